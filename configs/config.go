// Package configs holds custodian's configuration: the typed structure, its
// defaults, the YAML parser and the validator, plus the commented example
// configuration shipped beside it (custodian.example.yaml) and the systemd unit.
//
// Design: Load parses strictly (unknown keys are errors, so a misspelt option is
// never silently ignored; a value that cannot be decoded, such as 0.5 for a
// whole number, is an error too, never truncated), fills defaults from one place (Default / applyDefaults),
// then Validate walks the whole structure and reports every problem at once, each
// with its path (jobs[0].schedule), the value found and what would be accepted.
// Nothing starts until the configuration is valid. Relative paths are resolved
// against the directory of the configuration file, so a configuration directory
// can be moved as a whole. There is no package-global configuration: callers pass
// *Config around.
package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"custodian/internal/limits"
)

// Errors returned by Load and Validate.
var (
	// ErrInvalid wraps a *ValidationError: the configuration parsed but breaks rules.
	ErrInvalid = errors.New("invalid configuration")
	// ErrParse: the file is not valid YAML or has unknown keys.
	ErrParse = errors.New("cannot parse configuration")
)

// Config is the whole configuration file.
type Config struct {
	// DataDir holds the ledger, the vault objects, keys and the API socket.
	DataDir string `yaml:"data_dir"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `yaml:"log_level"`
	// Unit names the agency unit that owns this installation (clause 八).
	Unit    string             `yaml:"unit"`
	Sources map[string]*Source `yaml:"sources"`
	Jobs    []*Job             `yaml:"jobs"`
	// Verify schedules the daemon's full ledger verification (verify.go).
	Verify Verify `yaml:"verify"`
	// Accounts sets the rules of per-person accounts (accounts.go).
	Accounts Accounts `yaml:"accounts"`
	// Listen, if set, serves the API over HTTPS too (listen.go).
	Listen *Listen `yaml:"listen"`
	// Checkpoints has the daemon keep signed checkpoints on disk
	// (checkpoints.go).
	Checkpoints Checkpoints `yaml:"checkpoints"`
	// Notify routes notifications by email and webhook (notify.go).
	Notify Notify `yaml:"notify"`
	// Metrics serves Prometheus metrics (notify.go).
	Metrics Metrics `yaml:"metrics"`
	// Review sets the defaults of the sampling review (review.go).
	Review Review `yaml:"review"`
	// Training enforces the yearly training hours (review.go).
	Training Training `yaml:"training"`
	// Vault sets how long an unsealed vault key is kept unused (vault.go).
	Vault VaultConfig `yaml:"vault"`

	// Path is the file this configuration was loaded from (not a YAML key).
	Path string `yaml:"-"`
}

// Source is one SFTP server.
type Source struct {
	Address           string   `yaml:"address"`
	User              string   `yaml:"user"`
	KeyFile           string   `yaml:"key_file"`
	KeyPassphraseFile string   `yaml:"key_passphrase_file"`
	KnownHosts        string   `yaml:"known_hosts"`
	ConnectTimeout    Duration `yaml:"connect_timeout"`
	// IOTimeout bounds how long any single SFTP request may stall.
	IOTimeout Duration `yaml:"io_timeout"`
	// Sessions is the number of SFTP sessions (SSH channels, each with its
	// own flow-control window) in all: many small files are in flight on
	// each, and a large file is read over all of them at once.
	Sessions int `yaml:"sessions" accept:"a whole number from 1 to 64"`
	// Connections is the number of SSH connections the sessions are spread
	// over. More are opened if the server refuses sessions beyond its own
	// limit (OpenSSH MaxSessions).
	Connections int `yaml:"connections" accept:"a whole number from 1 to 16"`
	// PacketSize is the SFTP read size; 0 (the default) chooses: 261120
	// for an OpenSSH server, else 32768, which every server must accept.
	// A server that answers larger reads short would make transfers fail
	// their size check, never store a short file.
	PacketSize int `yaml:"packet_size" accept:"0 (choose by server) or a whole number of bytes from 4096 to 261120"`
}

// Job is one scheduled pull.
type Job struct {
	Name      string `yaml:"name"`
	Source    string `yaml:"source"`
	Officer   string `yaml:"officer"`
	Schedule  string `yaml:"schedule"`
	RemoteDir string `yaml:"remote_dir"`
	Pattern   string `yaml:"pattern"`
	Kind      string `yaml:"kind"`
	Purpose   string `yaml:"purpose"`
	// EmergencyApproval is the reference of the head of agency's approval;
	// required when Purpose is "emergency" (clause 二(一)(二)).
	EmergencyApproval string `yaml:"emergency_approval"`

	Checksum        string `yaml:"checksum"`
	Manifest        string `yaml:"manifest"`
	AllowWeak       bool   `yaml:"allow_weak"`
	AllowUnverified bool   `yaml:"allow_unverified"`

	Records Records `yaml:"records"`

	Sequence    string    `yaml:"sequence"`
	ReadyMarker string    `yaml:"ready_marker"`
	Settle      Duration  `yaml:"settle"`
	AfterPull   AfterPull `yaml:"after_pull"`
	// FollowSymlinks pulls a symbolic link that matches the pattern when it
	// points to a regular file directly inside remote_dir; otherwise links
	// are refused, with the refusal on the ledger.
	FollowSymlinks bool  `yaml:"follow_symlinks"`
	Retry          Retry `yaml:"retry"`
	// Retention is how long the job's datasets are kept after receipt
	// (e.g. 2y, 180d, 1y180d); optional. `custodian dataset expiring`
	// lists the datasets past it, for destruction (clause 四(三)).
	Retention Retention `yaml:"retention"`
}

// Records says how a file's records are counted and where its declared count is.
type Records struct {
	Header       string `yaml:"header"`
	Trailer      string `yaml:"trailer"`
	RecordLength int    `yaml:"record_length" accept:"a whole number of bytes from 1 to 1048576"`
	Encoding     string `yaml:"encoding"`
	// Gzip: "auto" (by a .gz name), "yes" or "no".
	Gzip string `yaml:"gzip"`
	// MaxInflated is the largest decompressed size of a gzip payload;
	// beyond it decompression stops and the file is quarantined.
	MaxInflated ByteSize `yaml:"max_inflated"`
	// MaxInflateRatio is the largest number of decompressed bytes per
	// compressed byte (checked after the first MiB); beyond it
	// decompression stops and the file is quarantined.
	MaxInflateRatio int `yaml:"max_inflate_ratio" accept:"a whole number from 2 to 1032"`
}

// AfterPullAction is what is done with a remote file once its dataset is
// durably stored.
type AfterPullAction string

// The after_pull actions.
const (
	AfterPullKeep   AfterPullAction = "keep"
	AfterPullDelete AfterPullAction = "delete"
	AfterPullMove   AfterPullAction = "move"
)

// AfterPull is the after_pull option, parsed once: "keep", "delete" or
// "move:/absolute/dir" in YAML.
type AfterPull struct {
	// Action is keep, delete or move; empty until defaults are applied.
	Action AfterPullAction
	// Dir is the archive directory of a move: absolute and clean.
	Dir string
	// invalid holds a value that is none of the accepted forms, as
	// written, for Validate to report with its path.
	invalid string
}

// ParseAfterPull parses the YAML form of after_pull. The empty string is
// the unset value (ApplyDefaults makes it keep).
func ParseAfterPull(s string) (AfterPull, error) {
	switch s {
	case "":
		return AfterPull{}, nil
	case string(AfterPullKeep):
		return AfterPull{Action: AfterPullKeep}, nil
	case string(AfterPullDelete):
		return AfterPull{Action: AfterPullDelete}, nil
	}
	a := AfterPull{Action: AfterPullMove}
	a.Dir, _ = strings.CutPrefix(s, "move:")
	if err := a.check(); err != nil || !strings.HasPrefix(s, "move:") {
		return AfterPull{invalid: s}, fmt.Errorf("%q is not accepted; use keep, delete or move:/absolute/dir", s)
	}
	return a, nil
}

// check reports whether a is one of the accepted forms.
func (a AfterPull) check() error {
	switch {
	case a.invalid != "":
	case a.Action == AfterPullKeep || a.Action == AfterPullDelete:
		if a.Dir == "" {
			return nil
		}
	case a.Action == AfterPullMove:
		if strings.HasPrefix(a.Dir, "/") && path.Clean(a.Dir) == a.Dir {
			return nil
		}
	}
	return fmt.Errorf("%q is not accepted; use keep, delete or move:/absolute/dir", a.String())
}

// String is the YAML form: keep, delete or move:DIR.
func (a AfterPull) String() string {
	switch {
	case a.invalid != "":
		return a.invalid
	case a.Action == AfterPullMove:
		return "move:" + a.Dir
	}
	return string(a.Action)
}

// UnmarshalYAML implements yaml.Unmarshaler. A value that is none of the
// accepted forms is kept for Validate to report, with the accepted forms.
func (a *AfterPull) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: after_pull must be a single value", n.Line)}}
	}
	*a, _ = ParseAfterPull(n.Value)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (a AfterPull) MarshalYAML() (any, error) { return a.String(), nil }

// Retry is the per-job retry policy for transfer failures.
type Retry struct {
	Attempts int      `yaml:"attempts" accept:"a whole number from 1 (no retry) to 100"`
	Initial  Duration `yaml:"initial"`
	Max      Duration `yaml:"max"`
}

// Accepted values, shown in validation messages.
var (
	Kinds     = []string{"extract", "change"}
	Checksums = []string{"sidecar", "manifest", "none"}
	// Purposes are the legal bases of clause 二(一)(二) of the regulation.
	Purposes = []string{
		"cancer-prevention",      // 癌症防治法
		"vaccination",            // 疫苗接種
		"communicable-disease",   // 傳染病防治法
		"mental-health",          // 精神衛生法
		"pharmaceutical-affairs", // 藥事法
		"food-safety",            // 食品衛生安全管理法
		"other-health-law",       // 其他衛生醫療法規或政策計畫
		"emergency",              // 緊急事件, with the head of agency's approval
	}
	Encodings = []string{"utf-8", "big5"}
	LogLevels = []string{"debug", "info", "warn", "error"}
)

// Duration accepts "90s", "5m", whole days ("90d") or a bare number of
// seconds.
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler. A value that is not a duration
// is a *yaml.TypeError, so decoding goes on and Parse reports every problem.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	d.Duration = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size in bytes. It accepts a whole number of bytes, or a
// whole number with a unit: KiB, MiB, GiB, TiB (powers of 1024) or KB, MB,
// GB, TB (powers of 1000), in any case, e.g. 64GiB or "500 MB".
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler. A value that is not a size is
// a *yaml.TypeError, so decoding goes on and Parse reports every problem.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String writes b in the largest binary unit that divides it, e.g. 64GiB.
func (b ByteSize) String() string {
	for _, u := range []string{"TiB", "GiB", "MiB", "KiB"} {
		if size := byteUnits[strings.ToLower(u)]; b >= ByteSize(size) && int64(b)%size == 0 {
			return fmt.Sprintf("%d%s", int64(b)/size, u)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Load reads, parses, applies defaults and validates a configuration file.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", file, err)
	}
	cfg, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cfg.Path = abs
	return cfg, nil
}

// Parse parses YAML, applies defaults, resolves relative paths against baseDir
// and validates. Every problem is reported at once: keys that are not
// options and values that cannot be decoded (both ErrParse) together with
// the rules Validate checks (ErrInvalid), each with its path.
func Parse(data []byte, baseDir string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrParse, err)
	}
	var shape problems
	if checkShape(&shape, &root) {
		// Duplicate keys (reported) were removed: decode the rest.
		if b, err := yaml.Marshal(&root); err == nil {
			data = b
		}
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%w: %v", ErrParse, err)
		}
		// The values yaml.v3 could not decode are left unset. checkShape
		// names them with their paths; should it have missed one, yaml's
		// own message (with a line number) is kept.
		if len(shape) == 0 {
			for _, e := range te.Errors {
				shape.add("yaml", "%s", e)
			}
		}
	}
	cfg.ApplyDefaults()
	cfg.resolvePaths(baseDir)
	err := cfg.Validate()
	if len(shape) == 0 {
		if err != nil {
			return nil, err
		}
		return cfg, nil
	}
	all := &ValidationError{Problems: shape, parse: true}
	var ve *ValidationError
	if errors.As(err, &ve) {
		all.Problems = append(all.Problems, ve.Problems...)
	}
	return nil, all
}

// Default values.
const (
	DefaultSessions       = 8
	DefaultConnections    = 2
	DefaultPacketSize     = 32768 // when packet_size is unset and the server is not OpenSSH
	MaxPacketSize         = 261120
	DefaultConnectTimeout = 30 * time.Second
	DefaultIOTimeout      = 60 * time.Second
	DefaultRetryAttempts  = 3
	DefaultRetryInitial   = 30 * time.Second
	DefaultRetryMax       = 30 * time.Minute
	// DefaultMaxInflated and DefaultMaxInflateRatio bound gzip payloads;
	// see package limits for the reasoning (the record counter uses the
	// same values).
	DefaultMaxInflated     = ByteSize(limits.DefaultMaxInflated)
	DefaultMaxInflateRatio = limits.DefaultMaxInflateRatio
	// MaxInflateRatio is deflate's own limit (about 1032:1): a larger
	// ceiling could never be reached.
	MaxInflateRatio = 1032
)

// ApplyDefaults fills every unset option with its default; Parse calls it.
func (c *Config) ApplyDefaults() {
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	c.applyVerifyDefaults()
	c.applyCheckpointsDefaults()
	c.applyAccountsDefaults()
	c.applyNotifyDefaults()
	c.applyReviewDefaults()
	c.applyVaultDefaults()
	for _, s := range c.Sources {
		if s == nil {
			continue
		}
		if s.Sessions == 0 {
			s.Sessions = DefaultSessions
		}
		if s.Connections == 0 {
			s.Connections = DefaultConnections
		}
		if s.ConnectTimeout.Duration == 0 {
			s.ConnectTimeout.Duration = DefaultConnectTimeout
		}
		if s.IOTimeout.Duration == 0 {
			s.IOTimeout.Duration = DefaultIOTimeout
		}
	}
	for _, j := range c.Jobs {
		if j == nil {
			continue
		}
		if j.Kind == "" {
			j.Kind = "extract"
		}
		if j.Checksum == "" {
			j.Checksum = "sidecar"
		}
		if j.AfterPull == (AfterPull{}) {
			j.AfterPull = AfterPull{Action: AfterPullKeep}
		}
		if j.Records.Encoding == "" {
			j.Records.Encoding = "utf-8"
		}
		if j.Records.Gzip == "" {
			j.Records.Gzip = "auto"
		}
		if j.Records.MaxInflated == 0 {
			j.Records.MaxInflated = DefaultMaxInflated
		}
		if j.Records.MaxInflateRatio == 0 {
			j.Records.MaxInflateRatio = DefaultMaxInflateRatio
		}
		if j.Retry.Attempts == 0 {
			j.Retry.Attempts = DefaultRetryAttempts
		}
		if j.Retry.Initial.Duration == 0 {
			j.Retry.Initial.Duration = DefaultRetryInitial
		}
		if j.Retry.Max.Duration == 0 {
			j.Retry.Max.Duration = DefaultRetryMax
		}
	}
}

func (c *Config) resolvePaths(base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.Checkpoints.Dir)
	for _, s := range c.Sources {
		if s == nil {
			continue
		}
		abs(&s.KeyFile)
		abs(&s.KeyPassphraseFile)
		abs(&s.KnownHosts)
	}
	c.resolveNotifyPaths(abs)
}

// ValidationError lists every problem found, each prefixed with its path.
type ValidationError struct {
	Problems []string
	parse    bool // some problems are keys or values the parser refused
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%d problem(s) in configuration:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Unwrap lets errors.Is(err, ErrInvalid) succeed, and errors.Is(err,
// ErrParse) too when a key or value could not be parsed.
func (e *ValidationError) Unwrap() []error {
	if e.parse {
		return []error{ErrInvalid, ErrParse}
	}
	return []error{ErrInvalid}
}

type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

var jobNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// cronParser accepts the standard five fields with an optional CRON_TZ= prefix,
// and the @daily style descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks the whole configuration and returns a *ValidationError
// listing every problem, or nil. It touches the filesystem only to check
// that a data_dir that already exists is a directory (one that does not
// exist yet is fine: init creates it).
func (c *Config) Validate() error {
	var p problems
	if c.DataDir == "" {
		p.add("data_dir", "required; e.g. /var/lib/custodian")
	} else if n := len(c.SocketPath()); n > maxSocketPath {
		p.add("data_dir", "%q is too long: the API socket %s would be %d bytes, and Unix sockets allow %d; use a shorter path", c.DataDir, c.SocketPath(), n, maxSocketPath)
	} else if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
		p.add("data_dir", "%s exists and is not a directory; name a directory, or a path that does not exist yet (init creates it)", c.DataDir)
	} else if errors.Is(err, syscall.ENOTDIR) {
		p.add("data_dir", "%s: a part of the path is not a directory; name a directory, or a path that does not exist yet under an existing directory", c.DataDir)
	}
	if !contains(LogLevels, c.LogLevel) {
		p.add("log_level", "%q is not accepted; use one of %s", c.LogLevel, strings.Join(LogLevels, ", "))
	}
	if len(c.Sources) == 0 {
		p.add("sources", "at least one source is required")
	}
	for _, name := range sortedKeys(c.Sources) {
		s := c.Sources[name]
		at := "sources." + name
		if !jobNameRE.MatchString(name) {
			p.add(at, "name must be lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
		}
		if s == nil {
			p.add(at, "empty source; address, user, key_file and known_hosts are required")
			continue
		}
		if s.Address == "" {
			p.add(at+".address", "required; host:port, e.g. 127.0.0.1:2222")
		} else if _, port, err := splitHostPort(s.Address); err != nil || port == "" {
			p.add(at+".address", "%q is not host:port (e.g. 10.1.2.3:22)", s.Address)
		}
		if s.User == "" {
			p.add(at+".user", "required")
		}
		if s.KeyFile == "" {
			p.add(at+".key_file", "required: public-key authentication is the only method")
		}
		if s.KnownHosts == "" {
			p.add(at+".known_hosts", "required: host keys are always checked (there is no option to skip the check)")
		}
		if s.Sessions < 1 || s.Sessions > 64 {
			p.add(at+".sessions", "%d is out of range; use 1 to 64", s.Sessions)
		}
		if s.Connections < 1 || s.Connections > 16 {
			p.add(at+".connections", "%d is out of range; use 1 to 16", s.Connections)
		}
		if s.PacketSize != 0 && (s.PacketSize < 4096 || s.PacketSize > MaxPacketSize) {
			p.add(at+".packet_size", "%d is out of range; use 0 (automatic: 261120 for OpenSSH, else 32768) or 4096 to %d", s.PacketSize, MaxPacketSize)
		}
		if s.ConnectTimeout.Duration < 0 || s.IOTimeout.Duration < 0 {
			p.add(at, "timeouts must be positive")
		}
	}
	c.validateVerify(&p)
	c.validateCheckpoints(&p)
	c.validateAccounts(&p)
	c.validateListen(&p)
	c.validateNotify(&p)
	c.validateMetrics(&p)
	c.validateReview(&p)
	c.validateVault(&p)
	if len(c.Jobs) == 0 {
		p.add("jobs", "at least one job is required")
	}
	seen := map[string]int{}
	for i, j := range c.Jobs {
		at := fmt.Sprintf("jobs[%d]", i)
		if j == nil {
			p.add(at, "empty job")
			continue
		}
		c.validateJob(&p, at, j)
		if prev, dup := seen[j.Name]; dup && j.Name != "" {
			p.add(at+".name", "%q is also the name of jobs[%d]; job names must be unique", j.Name, prev)
		}
		seen[j.Name] = i
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func (c *Config) validateJob(p *problems, at string, j *Job) {
	if !jobNameRE.MatchString(j.Name) {
		p.add(at+".name", "%q: use 1-64 lower-case letters, digits, '.', '_' or '-'", j.Name)
	}
	if j.Source == "" {
		p.add(at+".source", "required; one of the names under sources: (%s)", strings.Join(sortedKeys(c.Sources), ", "))
	} else if _, ok := c.Sources[j.Source]; !ok {
		p.add(at+".source", "%q is not defined under sources:; defined: %s", j.Source, strings.Join(sortedKeys(c.Sources), ", "))
	}
	if j.Schedule != "" {
		if _, err := ParseSchedule(j.Schedule); err != nil {
			p.add(at+".schedule", "%q: %v; use five cron fields with an optional CRON_TZ= prefix, e.g. \"CRON_TZ=Asia/Taipei 0 2 * * *\"", j.Schedule, err)
		}
	}
	if j.RemoteDir == "" || !strings.HasPrefix(j.RemoteDir, "/") {
		p.add(at+".remote_dir", "%q: an absolute remote directory is required, e.g. /outbox", j.RemoteDir)
	}
	if j.Pattern == "" {
		p.add(at+".pattern", "required; a glob such as HR_FULL_*.txt")
	} else if _, err := path.Match(j.Pattern, ""); err != nil || strings.Contains(j.Pattern, "/") {
		p.add(at+".pattern", "%q is not a valid file-name glob (no '/'); e.g. HR_FULL_*.txt", j.Pattern)
	}
	if !contains(Kinds, j.Kind) {
		p.add(at+".kind", "%q is not accepted; use one of %s", j.Kind, strings.Join(Kinds, ", "))
	}
	if j.Purpose == "" {
		p.add(at+".purpose", "required: the legal basis, one of %s", strings.Join(Purposes, ", "))
	} else if !contains(Purposes, j.Purpose) {
		p.add(at+".purpose", "%q is not a legal basis of clause 二; use one of %s", j.Purpose, strings.Join(Purposes, ", "))
	} else if j.Purpose == "emergency" && strings.TrimSpace(j.EmergencyApproval) == "" {
		p.add(at+".emergency_approval", "required when purpose is emergency: the reference of the head of agency's approval")
	}
	switch j.Checksum {
	case "sidecar":
	case "manifest":
		if j.Manifest == "" {
			p.add(at+".manifest", "required when checksum is manifest: a glob naming the batch manifest, e.g. MANIFEST_*.csv")
		} else if _, err := path.Match(j.Manifest, ""); err != nil || strings.Contains(j.Manifest, "/") {
			p.add(at+".manifest", "%q is not a valid file-name glob", j.Manifest)
		}
	case "none":
		if !j.AllowUnverified {
			p.add(at+".checksum", "none is refused unless allow_unverified: true is also set; datasets are then recorded as unverified")
		}
	default:
		p.add(at+".checksum", "%q is not accepted; use one of %s", j.Checksum, strings.Join(Checksums, ", "))
	}
	r := j.Records
	for _, f := range []struct{ key, re string }{{"header", r.Header}, {"trailer", r.Trailer}} {
		if f.re == "" {
			continue
		}
		re, err := regexp.Compile(f.re)
		if err != nil {
			p.add(at+".records."+f.key, "%q is not a valid regular expression: %v", f.re, err)
		} else if re.NumSubexp() > 1 {
			p.add(at+".records."+f.key, "%q: use at most one capture group (the declared record count)", f.re)
		}
	}
	if r.RecordLength < 0 || r.RecordLength > 1<<20 {
		p.add(at+".records.record_length", "%d is out of range; use a record length in bytes, 1 to 1048576, or leave it out", r.RecordLength)
	}
	if !contains(Encodings, strings.ToLower(r.Encoding)) {
		p.add(at+".records.encoding", "%q is not accepted; use one of %s", r.Encoding, strings.Join(Encodings, ", "))
	}
	if !contains([]string{"auto", "yes", "no"}, r.Gzip) {
		p.add(at+".records.gzip", "%q is not accepted; use auto, yes or no", r.Gzip)
	}
	if r.MaxInflated < 1 {
		p.add(at+".records.max_inflated", "%d is out of range; use a positive size such as 64GiB", int64(r.MaxInflated))
	}
	if r.MaxInflateRatio < 2 || r.MaxInflateRatio > MaxInflateRatio {
		p.add(at+".records.max_inflate_ratio", "%d is out of range; use a whole number from 2 to %d (deflate cannot exceed about %d:1)", r.MaxInflateRatio, MaxInflateRatio, MaxInflateRatio)
	}
	if j.Sequence != "" {
		re, err := regexp.Compile(j.Sequence)
		if err != nil {
			p.add(at+".sequence", "%q is not a valid regular expression: %v", j.Sequence, err)
		} else if re.NumSubexp() != 1 {
			p.add(at+".sequence", "%q must have exactly one capture group holding the sequence digits, e.g. '_(\\d{4})\\.txt$'", j.Sequence)
		}
	} else if j.Kind == "change" {
		p.add(at+".sequence", "required for change files: a regex whose group is the sequence number, e.g. '_(\\d{4})\\.txt$'")
	}
	if j.ReadyMarker != "" && (strings.Contains(j.ReadyMarker, "/") || j.ReadyMarker == "." || j.ReadyMarker == "..") {
		p.add(at+".ready_marker", "%q: use a suffix such as .done", j.ReadyMarker)
	}
	if r := j.Retention; r.Set() && (r.Years*366+r.Days < 1 || r.Years > 100 || r.Days > 36600) {
		p.add(at+".retention", "%s is out of range; use 1d to 100y, e.g. 2y", r)
	}
	if j.Settle.Duration < 0 {
		p.add(at+".settle", "must not be negative")
	}
	if err := j.AfterPull.check(); err != nil {
		p.add(at+".after_pull", "%v", err)
	}
	if j.Retry.Attempts < 1 || j.Retry.Attempts > 100 {
		p.add(at+".retry.attempts", "%d is out of range; use 1 (no retry) to 100", j.Retry.Attempts)
	}
	if j.Retry.Initial.Duration <= 0 || j.Retry.Max.Duration < j.Retry.Initial.Duration {
		p.add(at+".retry", "initial must be positive and max at least initial (found %s, %s)", j.Retry.Initial, j.Retry.Max)
	}
}

// Job returns the job with the given name.
func (c *Config) Job(name string) (*Job, bool) {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return nil, false
}

// JobNames lists the configured job names in order.
func (c *Config) JobNames() []string {
	out := make([]string, len(c.Jobs))
	for i, j := range c.Jobs {
		out[i] = j.Name
	}
	return out
}

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path
// holds 108 bytes including the terminating NUL).
const maxSocketPath = 107

// Paths under data_dir.
func (c *Config) LedgerPath() string { return filepath.Join(c.DataDir, "ledger.db") }
func (c *Config) VaultDir() string   { return filepath.Join(c.DataDir, "vault") }
func (c *Config) KeysDir() string    { return filepath.Join(c.DataDir, "keys") }
func (c *Config) SocketPath() string { return filepath.Join(c.DataDir, "custodian.sock") }
func (c *Config) SigningKeyPath() string {
	return filepath.Join(c.KeysDir(), "ledger.sign")
}
func (c *Config) VerifierKeyPath() string {
	return filepath.Join(c.KeysDir(), "ledger.vkey")
}

func splitHostPort(a string) (string, string, error) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return "", "", fmt.Errorf("missing port")
	}
	port := a[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("bad port")
	}
	return strings.Trim(a[:i], "[]"), port, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParseSchedule parses a job's schedule with the same rules Validate uses.
// robfig/cron panics on a time zone prefix without fields ("CRON_TZ=UTC"),
// found by FuzzParse; bad input must give an error, so that case is refused
// first and any other panic is turned into an error.
func ParseSchedule(spec string) (sched cron.Schedule, err error) {
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, fmt.Errorf("a time zone must be followed by the five schedule fields")
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("unparsable schedule")
		}
	}()
	return cronParser.Parse(spec)
}
