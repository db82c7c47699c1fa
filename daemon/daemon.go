// Package daemon is custodian's long-running process and the local API that
// every other command talks to.
//
// One process owns the ledger's bbolt file: Open takes bbolt's exclusive lock,
// so a second daemon (or a command opening the ledger directly while the
// daemon runs) fails at once instead of corrupting anything. On start the
// daemon checks its ledger against the last verified signed checkpoint and
// refuses all work if it fails (health.go), then recovers from any crash: partial vault objects are deleted and
// objects that no dataset refers to (stored, but the ledger commit never
// happened) are removed, each removal recorded on the ledger. It then runs the
// cron schedule and serves an HTTP API on a Unix socket inside data_dir (mode
// 0600, in a 0700 directory). Reload (SIGHUP) swaps in a re-read
// configuration for runs that start afterwards.
//
// Every API request but login is made by one logged-in person: the bearer
// session token names them (the service's Authenticate); over the Unix
// socket the peer credentials (SO_PEERCRED) add the host account, kernel
// vouched. The same API is served over HTTPS when configured (TLS only). The
// API is thin: each route decodes, calls one method of the service layer
// (package service) with that Actor, and encodes; the service authorizes,
// applies the custody rules and records on the ledger. The daemon's own
// events (start, stop, reload, recovery) take the service's one path too.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/sdnotify"
	"custodian/metrics"
	"custodian/service"
	"custodian/transfer"
	"custodian/vault"
)

// Errors of starting the daemon.
var (
	// ErrNotInitialized: data_dir has no installation; run custodian init.
	ErrNotInitialized = errors.New("not initialized")
	// ErrAlreadyInitialized: init refuses to overwrite an installation.
	ErrAlreadyInitialized = errors.New("already initialized")
	// ErrRunning: another daemon holds the ledger or the socket.
	ErrRunning = errors.New("another custodian daemon is running")
)

// SystemActor attributes what the daemon does on its own (crash recovery).
const SystemActor = service.SystemActor

// Daemon is an open installation.
type Daemon struct {
	Config  *configs.Config
	Ledger  *audit.Ledger
	Vault   *vault.Vault
	Runner  *transfer.Runner
	Service *service.Service
	Log     zerolog.Logger

	wg     sync.WaitGroup
	health *health
	ops    *ops

	mu     sync.Mutex // guards cron and runCtx
	cron   *cron.Cron
	runCtx context.Context
}

// Open opens the ledger (taking its lock), the vault's public part and the
// signing key, and recovers from any earlier crash. It first refuses an
// installation that another account could have changed (checkBeforeOpen:
// data_dir's ownership and permissions, readable source keys), and one
// whose vault or keys are not those the ledger recorded at init (checkKeys).
func Open(cfg *configs.Config, log zerolog.Logger) (*Daemon, error) {
	if _, err := os.Stat(cfg.LedgerPath()); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no ledger; run `custodian init --config %s` first", ErrNotInitialized, cfg.DataDir, cfg.Path)
	}
	if err := checkBeforeOpen(cfg); err != nil {
		return nil, err
	}
	skey, err := os.ReadFile(cfg.SigningKeyPath())
	if err != nil {
		return nil, fmt.Errorf("reading the ledger signing key: %w", err)
	}
	signer, err := audit.NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("ledger signing key %s: %w", cfg.SigningKeyPath(), err)
	}
	led, err := audit.Open(cfg.LedgerPath(), audit.Options{Signer: signer, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, audit.ErrLocked) {
			return nil, fmt.Errorf("%w: %s is locked by another process (is `custodian serve` already running? commands other than serve talk to it through its socket)", ErrRunning, cfg.LedgerPath())
		}
		return nil, explainOpenError(cfg, err)
	}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		led.Close()
		return nil, err
	}
	if err := settleRotation(led, v); err != nil {
		led.Close()
		return nil, err
	}
	if err := checkKeys(cfg, led, v, signer); err != nil {
		led.Close()
		return nil, err
	}
	d := &Daemon{Config: cfg, Ledger: led, Vault: v, Log: log}
	d.health = newHealth(d, signer.(audit.KeyedSigner).VerifierKey())
	d.Runner = &transfer.Runner{Config: cfg, Ledger: led, Store: transfer.VaultStore{V: v}, Log: log, Record: d.health.record}
	d.Service = &service.Service{Ledger: led, Runner: d.Runner, Logger: log, Signer: signer, Vault: v,
		Recorder:     func(ev audit.Event) error { d.health.record(ev); return nil },
		Gate:         d.health.refusal,
		LedgerHealth: d.health.status,
		OnVerifyFailure: func(a service.Actor) error {
			// Failed against the caller's key or checkpoint, or the ledger
			// is damaged: the daemon's own full check decides, and stops
			// all work if it fails too.
			return d.health.verifyFull("request by " + a.Name)
		}}
	if err := d.openOps(); err != nil {
		d.health.close()
		led.Close()
		return nil, err
	}
	// Check the ledger before anything relies on it: recovery deletes vault
	// objects no dataset record names.
	if err := d.health.verifyAtStart(); err != nil {
		d.closeAll()
		return nil, fmt.Errorf("verifying the ledger at start: %w", err)
	}
	if d.health.damaged() {
		d.Log.Error().Msg("crash recovery skipped: the ledger failed verification, so no vault object is removed")
		return d, nil
	}
	if err := d.recover(); err != nil {
		d.closeAll()
		return nil, err
	}
	if err := d.ops.seedRuns(); err != nil {
		d.Log.Warn().Err(err).Msg("cannot read the last runs from the ledger; status and metrics show runs from now on")
	}
	return d, nil
}

// recover removes what a crash left half-done. Partial objects hold only
// ciphertext and are simply deleted; an object with no dataset was stored but
// never committed, so the file will be pulled again.
func (d *Daemon) recover() error {
	partial, err := d.Vault.Recover()
	if err != nil {
		return fmt.Errorf("recovering the vault: %w", err)
	}
	ds, err := d.Ledger.Datasets()
	if err != nil {
		return err
	}
	referenced := make(map[string]bool, len(ds))
	for _, x := range ds {
		for _, id := range x.Objects() {
			referenced[id] = true
		}
	}
	ids, err := d.Vault.List()
	if err != nil {
		return err
	}
	// Key files too: a crash between storing an object's key and its
	// ciphertext leaves a key without its object.
	keys, err := d.Vault.ListKeys()
	if err != nil {
		return err
	}
	var orphans []string
	seen := map[string]bool{}
	for _, id := range append(ids, keys...) {
		if !referenced[id] && !seen[id] {
			seen[id] = true
			orphans = append(orphans, id)
		}
	}
	slices.Sort(orphans)
	if len(partial) == 0 && len(orphans) == 0 {
		return nil
	}
	for _, id := range orphans {
		// Kept, encrypted, outside objects/: normally the ciphertext of a
		// file whose ledger commit a crash prevented (it is pulled again),
		// but if the ledger lost a record, this is the only copy.
		if err := d.Vault.SetAside(id); err != nil {
			return fmt.Errorf("setting aside orphan object %s: %w", id, err)
		}
	}
	d.Log.Warn().Int("partial_objects", len(partial)).Int("orphan_objects", len(orphans)).Msg("recovered from an interrupted run")
	d.event(audit.Event{Actor: SystemActor, Type: audit.EvVaultRecovered, Details: map[string]string{
		"partial_objects_removed":  strconv.Itoa(len(partial)),
		"orphan_objects_set_aside": strconv.Itoa(len(orphans)),
		"orphan_objects":           strings.Join(orphans, " "),
	}})
	return nil
}

// Close stops retrying ledger writes (events still waiting go to an
// incident report) and closes the ledger.
func (d *Daemon) Close() error {
	return d.closeAll()
}

func (d *Daemon) closeAll() error {
	if err := d.ops.notifier.Close(); err != nil {
		d.Log.Error().Err(err).Msg("closing the notification queue")
	}
	d.health.close()
	return d.Ledger.Close()
}

// Serve runs the schedule and the API until ctx is cancelled (SIGTERM), then
// stops taking work, cancels running jobs (their partial objects are removed)
// and returns.
func (d *Daemon) Serve(ctx context.Context) error {
	ln, err := listenSocket(d.Config.SocketPath())
	if err != nil {
		return err
	}
	var tlsLn net.Listener
	if l := d.Config.Listen; l != nil {
		if tlsLn, err = listenTLS(l); err != nil {
			ln.Close()
			return err
		}
	}
	runCtx, cancelRuns := context.WithCancel(context.Background())
	defer cancelRuns()

	c, err := d.schedule(runCtx, d.Runner.CurrentConfig())
	if err != nil {
		ln.Close()
		return err
	}
	d.mu.Lock()
	d.cron, d.runCtx = c, runCtx
	d.mu.Unlock()
	var metricsLn net.Listener
	if addr := d.Config.Metrics.Listen; addr != "" {
		if metricsLn, err = metrics.Listen(addr); err != nil {
			ln.Close()
			return err
		}
	}
	c.Start()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.verifyLoop(runCtx) }()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.sweepLoop(runCtx) }()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.checkpointLoop(runCtx) }()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.sealLoop(runCtx) }()
	d.ops.notifier.Start()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.ops.checkpointLoop(runCtx, time.Hour) }()
	if metricsLn != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.ops.metrics.Serve(runCtx, metricsLn); err != nil {
				d.Log.Error().Err(err).Msg("metrics listener stopped")
			}
		}()
		d.Log.Info().Str("metrics", metricsLn.Addr().String()).Msg("serving metrics on loopback")
	}

	handler := d.handler(runCtx)
	srv := &http.Server{
		Handler:           handler,
		ConnContext:       withPeer,
		ReadHeaderTimeout: 10 * time.Second,
	}
	d.event(audit.Event{Actor: SystemActor, Type: audit.EvDaemonStarted, Details: map[string]string{"pid": strconv.Itoa(os.Getpid())}})
	d.recordJobSettings(d.Runner.CurrentConfig(), "start")
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	var tlsSrv *http.Server
	if tlsLn != nil {
		tlsSrv = &http.Server{
			Handler:           d.httpsHandler(runCtx, handler),
			ConnContext:       withPeer,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          tlsErrorLog(d.Log),
		}
		go func() { errc <- tlsSrv.Serve(tlsLn) }()
		d.Log.Info().Str("address", tlsLn.Addr().String()).Msg("serving the API over HTTPS")
	}
	d.Log.Info().Str("socket", d.Config.SocketPath()).Int("jobs", len(d.Runner.CurrentConfig().Jobs)).Msg("custodian serving")
	// Listening: tell systemd (Type=notify) and keep its watchdog fed.
	if _, err := sdnotify.Send(sdnotify.Ready + "\nSTATUS=serving " + d.Config.SocketPath()); err != nil {
		d.Log.Warn().Err(err).Msg("cannot notify the service manager (ready)")
	}
	if every := sdnotify.WatchdogInterval(); every > 0 {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.ops.watchdog(runCtx, every) }()
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if _, serr := sdnotify.Send(sdnotify.Stopping); serr != nil {
		d.Log.Warn().Err(serr).Msg("cannot notify the service manager (stopping)")
	}
	d.Log.Info().Msg("shutting down")
	d.mu.Lock()
	c, d.cron = d.cron, nil
	d.mu.Unlock()
	<-c.Stop().Done()
	cancelRuns()
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	if tlsSrv != nil {
		_ = tlsSrv.Shutdown(shutCtx)
	}
	d.wg.Wait()
	os.Remove(d.Config.SocketPath())
	d.Service.SealForShutdown() // the vault key never outlives the process
	d.event(audit.Event{Actor: SystemActor, Type: audit.EvDaemonStopped})
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// schedule builds the cron table of cfg's jobs.
func (d *Daemon) schedule(runCtx context.Context, cfg *configs.Config) (*cron.Cron, error) {
	c := cron.New(cron.WithParser(scheduleParser{}), cron.WithLogger(cronLogger{d.Log}))
	for _, j := range cfg.Jobs {
		if j.Schedule == "" {
			continue
		}
		name := j.Name
		if _, err := c.AddFunc(j.Schedule, func() { d.scheduled(runCtx, name) }); err != nil {
			return nil, fmt.Errorf("jobs %s: schedule: %w", name, err)
		}
	}
	return c, nil
}

// Reload re-reads the configuration file (SIGHUP). A valid configuration
// replaces the jobs, sources and schedule; runs in progress finish with the
// configuration they started with. data_dir cannot change while the daemon
// runs. An invalid file changes nothing. Either way the outcome is recorded
// on the ledger.
func (d *Daemon) Reload() error {
	nc, err := configs.Load(d.Config.Path)
	if err == nil && nc.DataDir != d.Config.DataDir {
		err = fmt.Errorf("data_dir cannot change while the daemon runs (%s → %s); restart it", d.Config.DataDir, nc.DataDir)
	}
	if err == nil {
		err = CheckSourceSecrets(nc)
	}
	var c *cron.Cron
	if err == nil {
		d.mu.Lock()
		running := d.runCtx != nil && d.cron != nil
		ctx := d.runCtx
		d.mu.Unlock()
		if running {
			c, err = d.schedule(ctx, nc)
		}
	}
	if err != nil {
		d.Log.Error().Err(err).Msg("configuration reload refused; the previous configuration stays in force")
		d.event(audit.Event{Actor: SystemActor, Type: audit.EvConfigReloadRefused, Details: map[string]string{"error": err.Error()}})
		return err
	}
	d.Runner.SetConfig(nc)
	d.ops.notifier.SetConfig(nc.Notify)
	if c != nil {
		d.mu.Lock()
		old := d.cron
		if old != nil { // not shutting down
			d.cron = c
			c.Start()
		}
		d.mu.Unlock()
		if old != nil {
			old.Stop() // running scheduled jobs finish; Serve waits for them
		}
	}
	d.Log.Info().Strs("jobs", nc.JobNames()).Msg("configuration reloaded")
	d.event(audit.Event{Actor: SystemActor, Type: audit.EvConfigReloaded, Details: map[string]string{"jobs": strings.Join(nc.JobNames(), ",")}})
	d.recordJobSettings(nc, "reload")
	return nil
}

func (d *Daemon) scheduled(ctx context.Context, job string) {
	d.wg.Add(1)
	defer d.wg.Done()
	if err := d.health.refusal(); err != nil {
		d.Log.Warn().Str("job", job).Err(err).Msg("scheduled run skipped")
		d.event(audit.Event{Actor: SystemActor, Type: audit.EvJobSkipped, Job: job, Details: map[string]string{"reason": d.health.reason()}})
		return
	}
	if p, err := d.Service.JobPause(job); err != nil || p != nil {
		// Paused: the pause is on the ledger; each skipped tick is not.
		d.Log.Info().Str("job", job).Msg("scheduled run skipped: the job is paused")
		return
	}
	j, _ := d.Runner.CurrentConfig().Job(job)
	actor := "system:scheduler"
	if j != nil && j.Officer != "" {
		actor = j.Officer
	}
	_, err := d.Runner.Run(ctx, transfer.RunRequest{Job: job, Actor: actor, Trigger: "schedule"})
	if errors.Is(err, transfer.ErrJobRunning) {
		d.event(audit.Event{Actor: SystemActor, Type: audit.EvJobSkipped, Job: job, Details: map[string]string{"reason": "previous run still in progress"}})
	} else if err != nil {
		d.Log.Error().Err(err).Str("job", job).Msg("scheduled run")
	}
}

// event records a stand-alone event through the ledger-health component,
// which keeps it until the ledger can take it.
func (d *Daemon) event(ev audit.Event) { d.health.record(ev) }

// verifyLoop verifies the whole ledger every verify.every (re-read after
// each run, so a reload changes it) until ctx ends.
func (d *Daemon) verifyLoop(ctx context.Context) {
	for {
		every := d.Runner.CurrentConfig().Verify.Every.Duration
		if every <= 0 {
			every = configs.DefaultVerifyEvery
		}
		d.health.setNext(time.Now().Add(every))
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := d.health.verifyFull("schedule"); err != nil {
			d.Log.Error().Err(err).Msg("scheduled ledger verification could not run; it runs again at the next interval")
		}
	}
}

// sweepLoop applies the account rules that time alone triggers (expired
// requests, ended contractor agreements, unused accounts) at start and
// every few minutes until ctx ends.
func (d *Daemon) sweepLoop(ctx context.Context) {
	for {
		if err := d.Service.Sweep(ctx); err != nil {
			d.Log.Error().Err(err).Msg("account sweep")
		}
		d.ops.refreshCounts()
		t := time.NewTimer(5 * time.Minute)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// sealLoop drops an unsealed vault key once it sat unused for
// vault.unseal_idle (the service decides; this only asks often enough).
func (d *Daemon) sealLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Service.SealIfIdle()
		}
	}
}

// handler is the API over the service layer.
func (d *Daemon) handler(runCtx context.Context) http.Handler {
	h := &handlers{api: d.Service, auth: d.Service.Authenticate, runCtx: runCtx, wg: &d.wg, warning: d.health.warning,
		onError: func(path string, a Actor, code int, err error) {
			d.health.observe(err)
			d.Log.Warn().Str("path", path).Str("actor", a.Name).Int("status", code).Err(err).Msg("api request failed")
		}}
	return h.mux()
}

// metricsHandler serves /metrics to an account with the metrics role,
// authenticated with HTTP basic credentials (what Prometheus sends).
func (d *Daemon) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="custodian metrics"`)
			writeProblem(w, service.ProblemOf(fmt.Errorf("%w: /metrics needs the basic credentials of an account with the metrics role", service.ErrUnauthenticated)))
			return
		}
		if _, err := d.Service.AuthenticateScrape(r.Context(), originFrom(r.Context()), user, pw); err != nil {
			if errors.Is(err, service.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Basic realm="custodian metrics"`)
			}
			writeProblem(w, service.ProblemOf(err))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		d.ops.metrics.Handler().ServeHTTP(w, r)
	})
}

// listenSocket listens on the Unix socket, removing a stale one left by a
// crash but refusing to take over a live daemon's.
func listenSocket(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s answers", ErrRunning, path)
	}
	os.Remove(path)
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

type scheduleParser struct{}

func (scheduleParser) Parse(spec string) (cron.Schedule, error) { return configs.ParseSchedule(spec) }

type cronLogger struct{ log zerolog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug().Fields(kv).Msg("cron: " + msg) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error().Err(err).Fields(kv).Msg("cron: " + msg)
}

// dataDirMode is the mode of data_dir and every directory custodian creates.
const dataDirMode = 0o700
