// Command harness is custodian's benchmark: it measures how long custodian
// takes to pull registry files from a real OpenSSH server, compared with a
// plain OpenSSH `sftp` download and with `rclone copy`, and how much memory
// the daemon uses while doing it (GitHub issue "Faster than a plain OpenSSH
// copy"). Run it through bench/run, which builds custodian first:
//
//	bash bench/run [--rounds N] [--quick] [--big-gib G] [--tools sftp,rclone,custodian]
//
// # What it does
//
// Everything happens in a fresh work directory under os.TempDir() (removed
// at the end unless --keep) and on 127.0.0.1 only:
//
//  1. It starts the real sshd with custodian/internal/sshdtest.Launch,
//     which generates an ed25519 host key and client key, writes them in
//     OpenSSH format with a known_hosts file pinning the host key, and runs
//     sshd (-D -e -f sshd_config, log in logs/sshd.log) on a free loopback
//     port: public-key authentication only, internal-sftp without a chroot
//     (remote paths are the local absolute paths), the current user only.
//     Launch waits until an SSH handshake succeeds; the harness stops sshd at
//     the end.
//  2. It writes the data with custodian/internal/synth (invented people):
//     workload A, one extract of at least --big-gib GiB (default 1) with a
//     sha256sum-style sidecar; workload B, 2,000 change-like files of about
//     20 KiB, each with its sidecar. --quick shrinks them to 8 MiB and 50
//     files and runs one round.
//  3. For each of --rounds rounds (default 3) and each workload it runs every
//     tool once, rotating the order of the tools from round to round, each
//     into a fresh destination that is checked (file count and bytes, or
//     custodian's per-file outcomes) and then deleted:
//     - sftp: `sftp -b BATCH ...` with `get FILE LOCAL` (A) or
//     `get -r DIR LOCAL` (B): a plain download without any check;
//     - rclone: `rclone copy` with --sftp-disable-hashcheck --transfers 4
//     --checkers 8 (its fastest setting); on B it also runs once with the
//     hash check on (rclone then runs md5sum on the server for every file)
//     and reports that figure, or its failure, separately;
//     - custodian: a fresh data_dir (`custodian init`), `custodian serve` in
//     the background, then the timed `custodian job run NAME`, which must
//     exit 0 with every file verified (SHA-256 against the sidecar, record
//     count against the trailer) and stored encrypted. The daemon's peak
//     resident memory (VmHWM) is read from /proc before it is stopped with
//     SIGTERM.
//     The file system is synced before every timed command, so one tool does
//     not pay for the write-back of the previous one, and once more after it,
//     untimed, to show the write-back the command left behind (custodian
//     fsyncs before it reports; sftp and rclone do not). The source files
//     stay in the page cache, as on a server that has just written them.
//     rclone.conf is rewritten before every rclone run, because rclone saves
//     what it detects on first use into it.
//  4. When A is not 1 GiB (--big-gib 4 for the memory check), custodian alone
//     also pulls a 1 GiB extract once, so that the daemon's peak memory at
//     both sizes is compared within one run.
//  5. It prints the median wall time of each tool per workload, the ratios
//     custodian/sftp and custodian/rclone and custodian's peak memory, and
//     writes a Markdown report (--out, default docs/benchmarks.md under
//     --repo): date, machine, exact command, one table per workload, peak
//     memory and the targets marked met or not met. Everything from
//     the line "<!-- findings -->" of an existing report on is kept, so the
//     hand-written findings survive a re-run.
//
// With --rtt (e.g. 30ms) every workload is run a second time, keys A-wan
// and B-wan, with every client connecting through a delay line
// (delay.go): a TCP proxy on 127.0.0.1 in front of the same sshd that holds
// each byte for half the round trip in each direction. --rate (e.g. 1g)
// adds A-paced, the extract through a second line also paced at that bit
// rate, and reports each tool's link utilization. The WAN runs are part of
// the same rounds, so the tools alternate as on loopback. sftp is not run
// on B-wan unless --wan-sftp-small (it needs about 0.4 s per file at 30 ms).
// sftp and rclone copy the sidecars too, and their times include a sync
// right after the command, since custodian's output is durable when it
// reports.
//
// A failed run (a tool's non-zero exit, a missing or short file, a custodian
// file not verified) is reported in the tables and the report, and makes
// the harness exit with status 1 after the report is written. The failure of
// rclone's hash-checking run is only recorded: it is an observation, not a
// fault of the harness or of custodian.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"custodian/internal/sshdtest"
)

// Tool names, as accepted by --tools.
const (
	toolSFTP      = "sftp"
	toolRclone    = "rclone"
	toolCustodian = "custodian"
)

var allTools = []string{toolSFTP, toolRclone, toolCustodian}

// options is the harness's whole configuration; main fills it from flags and
// the smoke test fills it directly.
type options struct {
	Custodian string   // path to the custodian binary (required)
	RepoRoot  string   // a relative Out is resolved against it
	Out       string   // Markdown report; "" writes none
	Rounds    int      // rounds of every tool on every workload
	Quick     bool     // tiny smoke sizes (8 MiB, 50 files)
	BigGiB    float64  // size of workload A in GiB
	Tools     []string // subset of allTools, in this order
	Keep      bool     // keep the work directory
	Repro     string   // the command line shown in the report
	Timeout   time.Duration
	// RcloneHashcheck runs rclone once on workload B with its hash check on.
	RcloneHashcheck bool
	// RTT, if set, repeats the workloads through a delay line of this
	// round trip (bench/harness/delay.go); Rate adds a run of workload A
	// through a line also paced at Rate (bits per second, "1g").
	RTT  time.Duration
	Rate string
	// WANSFTPSmall also runs sftp on the small files through the delay
	// line (about 12 round trips per file, so 2,000 files take minutes).
	WANSFTPSmall bool
	Log          io.Writer // progress and summary; nil discards

	rate float64 // Rate parsed
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	o := options{Log: os.Stdout}
	var tools string
	fs.StringVar(&o.Custodian, "custodian", "", "custodian binary to benchmark (required; bench/run builds it)")
	fs.StringVar(&o.RepoRoot, "repo", ".", "repository root; a relative --out is resolved against it")
	fs.StringVar(&o.Out, "out", "docs/benchmarks.md", "Markdown report to write (\"\" for none)")
	fs.IntVar(&o.Rounds, "rounds", 3, "rounds (each tool runs once per workload per round)")
	fs.BoolVar(&o.Quick, "quick", false, "smoke run: an 8 MiB extract, 50 small files, 1 round")
	fs.Float64Var(&o.BigGiB, "big-gib", 1, "size of workload A's extract in GiB (4 for the memory check)")
	fs.StringVar(&tools, "tools", strings.Join(allTools, ","), "comma-separated tools to run: sftp, rclone, custodian")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory (keys, configs, logs, source data)")
	fs.StringVar(&o.Repro, "repro", "", "command line to show in the report (bench/run sets it)")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "limit for one timed command")
	fs.BoolVar(&o.RcloneHashcheck, "rclone-hashcheck", true, "also run rclone once on the small files with its hash check on")
	fs.DurationVar(&o.RTT, "rtt", 0, "also run every workload through a delay line of this round trip (e.g. 30ms)")
	fs.StringVar(&o.Rate, "rate", "", "with --rtt: also run the extract through the line paced at this bit rate (e.g. 1g)")
	fs.BoolVar(&o.WANSFTPSmall, "wan-sftp-small", false, "with --rtt: also run sftp on the small files through the line (slow)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	roundsSet := false
	fs.Visit(func(f *flag.Flag) { roundsSet = roundsSet || f.Name == "rounds" })
	if o.Quick && !roundsSet {
		o.Rounds = 1
	}
	var err error
	if o.Tools, err = parseTools(tools); err != nil {
		return o, err
	}
	if o.Repro == "" {
		o.Repro = "bash bench/run " + strings.Join(args, " ")
	}
	return o, nil
}

// parseTools checks a comma-separated list and returns it in allTools order.
func parseTools(s string) ([]string, error) {
	want := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(allTools, t) {
			return nil, fmt.Errorf("--tools: unknown tool %q; use %s", t, strings.Join(allTools, ", "))
		}
		want[t] = true
	}
	var out []string
	for _, t := range allTools {
		if want[t] {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--tools: no tool given")
	}
	return out, nil
}

func (o *options) validate() error {
	if o.Custodian == "" && slices.Contains(o.Tools, toolCustodian) {
		return errors.New("--custodian BINARY is required (bench/run builds it)")
	}
	if o.Rounds < 1 {
		return errors.New("--rounds must be at least 1")
	}
	if !o.Quick && (o.BigGiB <= 0 || o.BigGiB > 64) {
		return errors.New("--big-gib must be above 0 and at most 64")
	}
	if len(o.Tools) == 0 {
		return errors.New("no tool to run")
	}
	if o.RTT < 0 || o.RTT > 10*time.Second {
		return errors.New("--rtt must be between 0 and 10s")
	}
	var err error
	if o.rate, err = parseRate(o.Rate); err != nil {
		return err
	}
	if o.rate > 0 && o.RTT == 0 {
		return errors.New("--rate needs --rtt")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// bench is one harness run.
type bench struct {
	opts      options
	work      string // the work directory
	sshd      *sshdtest.Server
	paths     toolPaths
	workloads []*workload
	ref       *workload // 1 GiB extract for the memory comparison, or nil
	results   []measurement
	hashcheck *measurement // rclone with its hash check on, workload B
	started   time.Time
}

// run is the whole harness: see the package documentation.
func run(ctx context.Context, o options) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	b := &bench{opts: o, started: time.Now()}
	if b.paths, err = findTools(o.Tools); err != nil {
		return err
	}
	if o.Custodian != "" {
		if b.opts.Custodian, err = filepath.Abs(o.Custodian); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "custodian-bench-")
	if err != nil {
		return err
	}
	if w, err := filepath.EvalSymlinks(work); err == nil {
		work = w // sshd and the clients see the resolved path
	}
	b.work = work
	if o.Keep {
		b.logf("work directory (kept): %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	for _, d := range []string{"src", "runs", "logs"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o700); err != nil {
			return err
		}
	}

	if err := b.generate(); err != nil {
		return err
	}
	b.sshd, err = sshdtest.Launch(ctx, sshdtest.LaunchOptions{
		Dir:      work,
		SSHD:     b.paths.sshd,
		LogPath:  filepath.Join(work, "logs", "sshd.log"),
		LogLevel: "INFO",
	})
	if err != nil {
		return err
	}
	defer b.sshd.Stop()
	b.logf("sshd %s listening on %s (log %s)", b.paths.sshd, b.sshd.Addr, b.sshd.LogPath)
	if o.RTT > 0 {
		wan, err := b.startLine(o.RTT, 0)
		if err != nil {
			return err
		}
		defer wan.Close()
		var paced *delayLine
		if b.opts.rate > 0 {
			if paced, err = b.startLine(o.RTT, b.opts.rate); err != nil {
				return err
			}
			defer paced.Close()
		}
		b.addWANWorkloads(wan, paced)
	}
	if err := b.writeClientConfigs(); err != nil {
		return err
	}

	if err := b.rounds(ctx); err != nil {
		return err
	}
	if err := b.extraRuns(ctx); err != nil {
		return err
	}

	sum := b.summarize()
	b.printSummary(sum)
	if o.Out != "" {
		out := o.Out
		if !filepath.IsAbs(out) {
			out = filepath.Join(o.RepoRoot, out)
		}
		if err := writeReport(out, b.report(sum)); err != nil {
			return err
		}
		b.logf("report written to %s", out)
	}
	if n := len(sum.failures); n > 0 {
		return fmt.Errorf("%d run(s) failed:\n  %s", n, strings.Join(sum.failures, "\n  "))
	}
	return ctx.Err()
}

// rounds runs every tool on every workload, rotating the tools' order.
func (b *bench) rounds(ctx context.Context) error {
	tools := b.opts.Tools
	for r := 1; r <= b.opts.Rounds; r++ {
		order := append(slices.Clone(tools[(r-1)%len(tools):]), tools[:(r-1)%len(tools)]...)
		for _, w := range b.workloads {
			for _, t := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				if !b.runs(t, w) {
					continue
				}
				m := b.runTool(ctx, t, w, r, true)
				b.record(m)
			}
		}
	}
	return nil
}

// extraRuns are the runs outside the rounds: rclone with its hash check on,
// and custodian on the 1 GiB reference extract.
func (b *bench) extraRuns(ctx context.Context) error {
	if b.opts.RcloneHashcheck && slices.Contains(b.opts.Tools, toolRclone) {
		for _, w := range b.workloads {
			if w.key != "B" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			m := b.runTool(ctx, toolRclone, w, 1, false)
			m.Tool = toolRcloneHash
			b.hashcheck = &m
			b.logMeasurement(m)
		}
	}
	if b.ref != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := b.runTool(ctx, toolCustodian, b.ref, 1, true)
		b.record(m)
	}
	return ctx.Err()
}

func (b *bench) record(m measurement) {
	b.results = append(b.results, m)
	b.logMeasurement(m)
}

func (b *bench) logMeasurement(m measurement) {
	line := fmt.Sprintf("round %d  %-2s %-17s %8s", m.Round, m.Workload, m.Tool, fmtSeconds(m.Wall))
	if m.PeakRSS > 0 {
		line += fmt.Sprintf("  peak RSS %.1f MiB", mib(m.PeakRSS))
	}
	if m.Err != "" {
		line += "  FAILED: " + firstLine(m.Err)
	}
	b.logf("%s", line)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.opts.Log, "bench: "+format+"\n", args...)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// runs reports whether tool runs on w: everything, except sftp on the
// small files through the delay line unless --wan-sftp-small.
func (b *bench) runs(tool string, w *workload) bool {
	return !(tool == toolSFTP && w.link != nil && w.single == "" && !b.opts.WANSFTPSmall)
}

// startLine starts a delay line to sshd and lets the clients' known_hosts
// accept sshd's host key at the line's address too.
func (b *bench) startLine(rtt time.Duration, rate float64) (*delayLine, error) {
	d, err := startDelayLine(b.sshd.Addr, rtt, rate)
	if err != nil {
		return nil, err
	}
	old := fmt.Sprintf("[127.0.0.1]:%d ", b.sshd.Port)
	if !strings.HasPrefix(b.sshd.KnownHostsLine, old) {
		d.Close()
		return nil, fmt.Errorf("unexpected known_hosts line %q", b.sshd.KnownHostsLine)
	}
	line := fmt.Sprintf("[127.0.0.1]:%d ", d.Port) + strings.TrimPrefix(b.sshd.KnownHostsLine, old)
	f, err := os.OpenFile(b.sshd.KnownHostsPath, os.O_APPEND|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = fmt.Fprintln(f, line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	what := "unpaced"
	if rate > 0 {
		what = "paced at " + fmtRate(rate)
	}
	b.logf("delay line %s → %s: %s RTT, %s", d.Addr, b.sshd.Addr, rtt, what)
	return d, nil
}

// addr and port are where the clients connect for w: sshd or a delay line.
func (b *bench) addr(w *workload) string {
	if w.link != nil {
		return w.link.Addr
	}
	return b.sshd.Addr
}

func (b *bench) port(w *workload) int {
	if w.link != nil {
		return w.link.Port
	}
	return b.sshd.Port
}
