// Package doctor checks the host custodian runs on (clause 三(三): a
// protected, dedicated host) and says, for each finding, how to fix it.
//
// Design: each check is a function from the configuration and the host's
// files to findings with a severity (ok, warn, fail) and a fix. The checks
// read only: the ledger is opened read-only, or not at all while the daemon
// holds its lock (then its figures come from the daemon's API if it answers,
// and are skipped with a note otherwise). Host files (/etc/passwd,
// /proc/self/mountinfo, /sys/dev/block) are read under Options.Root, so tests
// give a directory of their own. The only network access is the optional
// reachability check, which dials exactly the configured source addresses.
package doctor

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"custodian/audit"
	"custodian/backup"
	"custodian/configs"
	"custodian/daemon"
	"custodian/service"
)

// Severity of a finding.
type Severity string

// Severities.
const (
	OK   Severity = "ok"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Finding is one result of a check.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

// Options configure Run.
type Options struct {
	Config *configs.Config
	// Root is where /etc/passwd, /proc and /sys are read ("" is "/").
	Root string
	// Now is the time; default time.Now.
	Now func() time.Time
	// Reach dials each source's address (and nothing else) to see that its
	// SSH server answers.
	Reach bool
	// BackupMaxAge is the age beyond which the last backup is reported
	// (default 48h).
	BackupMaxAge time.Duration
	// Datasets, if set, lists the datasets (the daemon's API when it
	// runs); otherwise the ledger is opened read-only.
	Datasets func(ctx context.Context) ([]service.DatasetView, error)
	// Status, if set, is the daemon's status (its API): each job's officer
	// and whether that name can hold custody.
	Status func(ctx context.Context) (service.Status, error)
	// Timedatectl is the command run to read the clock's synchronisation
	// ("" means "timedatectl"; tests give a missing one).
	Timedatectl string
}

// Failed reports whether any finding is a failure.
func Failed(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == Fail })
}

func (o *Options) path(p string) string { return filepath.Join(o.root(), p) }
func (o *Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}
func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Run runs every check.
func Run(ctx context.Context, o Options) []Finding {
	var out []Finding
	for _, check := range []func(context.Context, *Options) []Finding{
		checkPermissions, checkAccounts, checkEncryption, checkSpace, checkClock,
		checkVerification, checkBackup, checkSources, checkTLS, checkOfficers,
	} {
		out = append(out, check(ctx, &o)...)
	}
	return out
}

func checkPermissions(_ context.Context, o *Options) []Finding {
	cfg := o.Config
	var out []Finding
	if err := daemon.CheckDataDir(cfg); err != nil {
		out = append(out, Finding{"permissions", Fail, err.Error(), fixOf(err)})
	} else {
		out = append(out, Finding{"permissions", OK, "data_dir " + cfg.DataDir + ", its parents, the ledger, the vault and the keys are the service account's and private", ""})
	}
	if err := daemon.CheckSourceSecrets(cfg); err != nil {
		out = append(out, Finding{"permissions", Fail, err.Error(), fixOf(err)})
	}
	if cfg.Path != "" {
		if err := daemon.CheckConfigFile(cfg.Path); err != nil {
			out = append(out, Finding{"permissions", Fail, err.Error(), fixOf(err)})
		}
	}
	return out
}

// fixOf splits off the "fix: ..." part of a permission error.
func fixOf(err error) string {
	if _, fix, ok := strings.Cut(err.Error(), "; fix: "); ok {
		return fix
	}
	return ""
}

type passwdEntry struct {
	name  string
	uid   int
	shell string
}

func readPasswd(o *Options) ([]passwdEntry, error) {
	f, err := os.Open(o.path("etc/passwd"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []passwdEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 7 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		uid, err := strconv.Atoi(fs[2])
		if err != nil {
			continue
		}
		out = append(out, passwdEntry{fs[0], uid, fs[6]})
	}
	return out, sc.Err()
}

// interactive reports whether a login shell lets someone log in.
func interactive(shell string) bool {
	base := filepath.Base(shell)
	return shell != "" && base != "nologin" && base != "false" && base != "sync" && base != "shutdown" && base != "halt"
}

func checkAccounts(_ context.Context, o *Options) []Finding {
	entries, err := readPasswd(o)
	if err != nil {
		return []Finding{{"accounts", Warn, "cannot read /etc/passwd: " + err.Error(), ""}}
	}
	uid := os.Geteuid()
	if fi, err := os.Stat(o.Config.DataDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid = int(st.Uid)
		}
	}
	var out []Finding
	svc := passwdEntry{name: "uid " + strconv.Itoa(uid), uid: uid}
	for _, e := range entries {
		if e.uid == uid {
			svc = e
			break
		}
	}
	switch {
	case uid == 0:
		out = append(out, Finding{"service account", Warn, "data_dir is root's: custodian should run as a dedicated service account",
			"useradd --system --shell /usr/sbin/nologin custodian, chown -R custodian: the data_dir, and run serve as it (configs/custodian.service)"})
	case interactive(svc.shell):
		out = append(out, Finding{"service account", Warn, fmt.Sprintf("the service account %s (owner of data_dir) has the login shell %s: anyone who learns its password or key can log in as the custodian", svc.name, svc.shell),
			"usermod --shell /usr/sbin/nologin " + svc.name})
	default:
		out = append(out, Finding{"service account", OK, fmt.Sprintf("the service account %s has no login shell (%s)", svc.name, svc.shell), ""})
	}
	var others []string
	for _, e := range entries {
		if e.uid != uid && e.uid != 0 && interactive(e.shell) {
			others = append(others, e.name+" ("+e.shell+")")
		}
	}
	if len(others) > 0 {
		out = append(out, Finding{"dedicated host", Warn, "other interactive accounts on the host: " + strings.Join(others, ", ") + "; the host should be dedicated to custodian (clause 三(三))",
			"remove the accounts that need no login, or give them a nologin shell (usermod --shell /usr/sbin/nologin NAME)"})
	} else {
		out = append(out, Finding{"dedicated host", OK, "no interactive accounts besides root and the service account", ""})
	}
	return out
}

// mountDevice returns the mount point and device number (major:minor) of
// the file system holding path, from mountinfo.
func mountDevice(o *Options, path string) (mount, dev, fstype string, err error) {
	f, err := os.Open(o.path("proc/self/mountinfo"))
	if err != nil {
		return "", "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		mp := unescapeMount(fs[4])
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(mount) {
			mount, dev = mp, fs[2]
			if i := slices.Index(fs, "-"); i > 0 && i+1 < len(fs) {
				fstype = fs[i+1]
			}
		}
	}
	if mount == "" {
		return "", "", "", errors.New("no mount found")
	}
	return mount, dev, fstype, sc.Err()
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// encrypted reports whether block device dev (major:minor) is dm-crypt or
// built on one (LVM on LUKS), following /sys/dev/block/DEV/slaves.
func encrypted(o *Options, dev string, depth int) (bool, string) {
	base := o.path(filepath.Join("sys/dev/block", dev))
	uuid, err := os.ReadFile(filepath.Join(base, "dm", "uuid"))
	if err == nil && strings.HasPrefix(string(uuid), "CRYPT-") {
		name, _ := os.ReadFile(filepath.Join(base, "dm", "name"))
		return true, strings.TrimSpace(string(name))
	}
	if depth > 8 {
		return false, ""
	}
	slaves, _ := os.ReadDir(filepath.Join(base, "slaves"))
	for _, s := range slaves {
		d, err := os.ReadFile(o.path(filepath.Join("sys/class/block", s.Name(), "dev")))
		if err != nil {
			continue
		}
		if ok, name := encrypted(o, strings.TrimSpace(string(d)), depth+1); ok {
			return true, name
		}
	}
	return false, ""
}

func checkEncryption(_ context.Context, o *Options) []Finding {
	dir, err := filepath.EvalSymlinks(o.Config.DataDir)
	if err != nil {
		return []Finding{{"disk encryption", Warn, "data_dir: " + err.Error(), ""}}
	}
	mount, dev, fstype, err := mountDevice(o, dir)
	if err != nil {
		return []Finding{{"disk encryption", Warn, "cannot tell whether data_dir is on an encrypted device: " + err.Error(), ""}}
	}
	if ok, name := encrypted(o, dev, 0); ok {
		return []Finding{{"disk encryption", OK, fmt.Sprintf("data_dir is on %s (%s, device %s), on dm-crypt %s", mount, fstype, dev, name), ""}}
	}
	return []Finding{{"disk encryption", Warn, fmt.Sprintf("data_dir is on %s (%s, device %s), which is not on dm-crypt: the vault objects are encrypted, but the ledger's metadata (file names, sizes, times, accounts) and the keys are not encrypted at rest", mount, fstype, dev),
		"put data_dir on a LUKS (dm-crypt) volume: cryptsetup luksFormat, then restore onto it (docs/operations.md)"}}
}

// datasets lists the datasets: from the daemon when it answers, else from
// the ledger opened read-only. skipped says why neither was possible.
func datasets(ctx context.Context, o *Options) (ds []service.DatasetView, skipped string) {
	if o.Datasets != nil {
		d, err := o.Datasets(ctx)
		if err == nil {
			return d, ""
		}
		if !errors.Is(err, daemon.ErrNotRunning) {
			return nil, "the daemon did not answer: " + err.Error()
		}
	}
	l, err := audit.Open(o.Config.LedgerPath(), audit.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if errors.Is(err, audit.ErrLocked) {
		return nil, "skipped: the daemon holds the ledger and its API did not answer"
	}
	if err != nil {
		return nil, "cannot read the ledger: " + err.Error()
	}
	defer l.Close()
	all, err := l.Datasets()
	if err != nil {
		return nil, "cannot read the ledger: " + err.Error()
	}
	for _, d := range all {
		ds = append(ds, service.ViewDataset(d))
	}
	return ds, ""
}

// IngestWindow is the period over which doctor measures the ingest rate.
const IngestWindow = 30 * 24 * time.Hour

func checkSpace(ctx context.Context, o *Options) []Finding {
	var st syscall.Statfs_t
	if err := syscall.Statfs(o.Config.DataDir, &st); err != nil {
		return []Finding{{"free space", Warn, "data_dir: " + err.Error(), ""}}
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	ds, skipped := datasets(ctx, o)
	if skipped != "" {
		return []Finding{{"free space", OK, fmt.Sprintf("%s free in data_dir; ingest rate %s", human(free), skipped), ""}}
	}
	var recent int64
	since := o.now().Add(-IngestWindow)
	for _, d := range ds {
		if d.ReceivedAt.After(since) {
			recent += d.Size
		}
	}
	perDay := float64(recent) / (IngestWindow.Hours() / 24)
	if perDay == 0 {
		return []Finding{{"free space", OK, fmt.Sprintf("%s free in data_dir; nothing received in the last 30 days", human(free)), ""}}
	}
	days := float64(free) / perDay
	msg := fmt.Sprintf("%s free in data_dir; %s received in the last 30 days (%s a day): about %.0f days left", human(free), human(recent), human(int64(perDay)), days)
	fix := "free space or grow the file system holding data_dir; a backup elsewhere keeps a copy, but never delete vault objects by hand (destruction needs its procedure)"
	switch {
	case days < 14:
		return []Finding{{"free space", Fail, msg, fix}}
	case days < 60:
		return []Finding{{"free space", Warn, msg, fix}}
	}
	return []Finding{{"free space", OK, msg, ""}}
}

// checkOfficers reports each job whose officer (the custodian of its
// datasets) is not an active officer or contractor account of the unit,
// as the daemon's status says (accounts are the daemon's to read).
func checkOfficers(ctx context.Context, o *Options) []Finding {
	if o.Status == nil {
		return nil
	}
	st, err := o.Status(ctx)
	if err != nil || st.Daemon == nil {
		why := "the daemon did not answer"
		if err != nil {
			why += ": " + err.Error()
		}
		return []Finding{{"job officers", OK, "not checked: " + why, ""}}
	}
	var out []Finding
	for _, j := range st.Daemon.Jobs {
		if j.OfficerProblem != "" {
			out = append(out, Finding{"job " + j.Name, Warn, fmt.Sprintf("officer %q: %s", j.Officer, j.OfficerProblem),
				"edit jobs[].officer in the configuration, then reload (systemctl reload custodian)"})
		}
	}
	if len(out) == 0 {
		out = append(out, Finding{"job officers", OK, fmt.Sprintf("every job's officer (%d jobs) is an active officer or contractor account of the unit", len(st.Daemon.Jobs)), ""})
	}
	return out
}

func checkClock(ctx context.Context, o *Options) []Finding {
	cmd := o.Timedatectl
	if cmd == "" {
		cmd = "timedatectl"
	}
	fix := "enable time synchronisation (systemctl enable --now systemd-timesyncd, or chrony): ledger times are evidence"
	if p, err := exec.LookPath(cmd); err == nil {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(c, p, "show", "--property=NTPSynchronized", "--value").Output()
		if err == nil {
			switch strings.TrimSpace(string(out)) {
			case "yes":
				return []Finding{{"clock", OK, "the clock is synchronised (timedatectl)", ""}}
			case "no":
				return []Finding{{"clock", Warn, "the clock is not synchronised (timedatectl)", fix}}
			}
		}
	}
	if _, err := os.Stat(o.path("run/systemd/timesync/synchronized")); err == nil {
		return []Finding{{"clock", OK, "the clock is synchronised (systemd-timesyncd)", ""}}
	}
	return []Finding{{"clock", Warn, "cannot tell whether the clock is synchronised (no timedatectl answer, no /run/systemd/timesync/synchronized)", fix}}
}

func checkVerification(_ context.Context, o *Options) []Finding {
	p := filepath.Join(o.Config.DataDir, "verified.checkpoint")
	fi, err := os.Stat(p)
	if err != nil {
		return []Finding{{"ledger verification", Warn, "the ledger has not been verified yet (no verified.checkpoint)", "start custodian serve: it verifies the ledger at start and every verify.every"}}
	}
	every := o.Config.Verify.Every.Duration
	if every <= 0 {
		every = configs.DefaultVerifyEvery
	}
	age := o.now().Sub(fi.ModTime())
	msg := fmt.Sprintf("last verified %s ago (verify.every %s)", age.Round(time.Minute), every)
	if age > 2*every+time.Hour {
		return []Finding{{"ledger verification", Warn, msg + ": overdue", "is custodian serve running? check custodian status and the logs"}}
	}
	return []Finding{{"ledger verification", OK, msg, ""}}
}

func checkBackup(_ context.Context, o *Options) []Finding {
	b, err := os.ReadFile(filepath.Join(o.Config.DataDir, backup.LastFile))
	fix := "schedule custodian backup --out DIR (docs/operations.md, \"Backup schedule\")"
	if err != nil {
		return []Finding{{"backup", Warn, "no backup recorded in data_dir", fix}}
	}
	var last backup.Last
	if err := json.Unmarshal(b, &last); err != nil {
		return []Finding{{"backup", Warn, backup.LastFile + ": " + err.Error(), fix}}
	}
	maxAge := o.BackupMaxAge
	if maxAge <= 0 {
		maxAge = 48 * time.Hour
	}
	age := o.now().Sub(last.Time)
	msg := fmt.Sprintf("last backup %s, %s ago, to %s", last.ID, age.Round(time.Minute), last.Dir)
	if age > maxAge {
		return []Finding{{"backup", Warn, msg + fmt.Sprintf(": older than %s", maxAge), fix}}
	}
	return []Finding{{"backup", OK, msg, ""}}
}

func checkSources(ctx context.Context, o *Options) []Finding {
	var out []Finding
	names := make([]string, 0, len(o.Config.Sources))
	for n := range o.Config.Sources {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := o.Config.Sources[n]
		if s == nil {
			continue
		}
		check := "source " + n
		fix := "ssh-keyscan -p PORT HOST >> " + s.KnownHosts + ", then compare the fingerprint with the provider's by another channel"
		pinned, err := hostKeyPinned(s)
		switch {
		case err != nil:
			out = append(out, Finding{check, Fail, "known_hosts: " + err.Error(), fix})
			continue
		case !pinned:
			out = append(out, Finding{check, Fail, fmt.Sprintf("no host key for %s in %s: every pull fails", s.Address, s.KnownHosts), fix})
			continue
		}
		msg := fmt.Sprintf("host key of %s pinned in %s", s.Address, s.KnownHosts)
		if o.Reach {
			if err := reach(ctx, s.Address); err != nil {
				out = append(out, Finding{check, Warn, msg + "; not reachable: " + err.Error(), "check the network path to the provider"})
				continue
			}
			msg += "; its SSH server answers"
		}
		out = append(out, Finding{check, OK, msg, ""})
	}
	return out
}

// hostKeyPinned asks the known_hosts file about the source's address with
// a key it cannot hold: a known host is then reported as a key mismatch.
func hostKeyPinned(s *configs.Source) (bool, error) {
	cb, err := knownhosts.New(s.KnownHosts)
	if err != nil {
		return false, err
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return false, err
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		return false, err
	}
	host, port, err := net.SplitHostPort(s.Address)
	if err != nil {
		return false, err
	}
	addr := &net.TCPAddr{IP: net.ParseIP(host)}
	addr.Port, _ = strconv.Atoi(port)
	err = cb(knownhosts.Normalize(s.Address), addr, key)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return len(ke.Want) > 0, nil
	}
	return err == nil, err
}

// reach connects to addr and reads the SSH version banner.
func reach(ctx context.Context, addr string) error {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(c, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("%s does not answer as an SSH server", addr)
	}
	return nil
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
