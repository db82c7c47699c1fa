package configs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Settings renders a job's effective settings (after defaults) and those
// of its source that matter to custody, as the ledger's job.configured
// events record them: one "key: value" line per setting, keys sorted, so
// that the same settings always give the same text and two versions can
// be compared line by line.
//
// The job's own options appear under their YAML names (records.trailer,
// retry.max, ...); the source's under "source.": its name, host, port,
// user, the paths of its key, key passphrase and known_hosts files, and
// hostKeys, the fingerprints of the pinned host keys (HostKeyFingerprints;
// nil leaves that line out). The source's tuning options (sessions,
// connections, timeouts, packet size) change how fast files arrive, not
// which files or from whom, and are left out. No secret is ever read or
// written: key and passphrase files appear by path only.
//
// A setting that is unset (an empty string, 0, false) is left out, so an
// option added in a later version with an unset default does not make
// every job's settings differ. A value that could break the line format
// (a control character, surrounding spaces, or a leading quote) is
// written as a Go quoted string.
func (j *Job) Settings(src *Source, hostKeys []string) string {
	var lines []string
	add := func(key, value string) {
		if value == "" {
			return
		}
		lines = append(lines, key+": "+settingValue(value))
	}
	flag := func(key string, v bool) {
		if v {
			add(key, "true")
		}
	}
	num := func(key string, v int64) {
		if v != 0 {
			add(key, strconv.FormatInt(v, 10))
		}
	}
	add("source", j.Source)
	add("officer", j.Officer)
	add("schedule", j.Schedule)
	add("remote_dir", j.RemoteDir)
	add("pattern", j.Pattern)
	add("kind", j.Kind)
	add("purpose", j.Purpose)
	add("emergency_approval", j.EmergencyApproval)
	add("checksum", j.Checksum)
	add("manifest", j.Manifest)
	flag("allow_weak", j.AllowWeak)
	flag("allow_unverified", j.AllowUnverified)
	add("records.header", j.Records.Header)
	add("records.trailer", j.Records.Trailer)
	num("records.record_length", int64(j.Records.RecordLength))
	add("records.encoding", j.Records.Encoding)
	add("records.gzip", j.Records.Gzip)
	if j.Records.MaxInflated != 0 {
		add("records.max_inflated", j.Records.MaxInflated.String())
	}
	num("records.max_inflate_ratio", int64(j.Records.MaxInflateRatio))
	add("sequence", j.Sequence)
	add("ready_marker", j.ReadyMarker)
	if j.Settle.Duration != 0 {
		add("settle", j.Settle.String())
	}
	add("after_pull", j.AfterPull.String())
	flag("follow_symlinks", j.FollowSymlinks)
	num("retry.attempts", int64(j.Retry.Attempts))
	if j.Retry.Initial.Duration != 0 {
		add("retry.initial", j.Retry.Initial.String())
	}
	if j.Retry.Max.Duration != 0 {
		add("retry.max", j.Retry.Max.String())
	}
	add("retention", j.Retention.String())
	if src != nil {
		host, port, err := splitHostPort(src.Address)
		if err != nil {
			add("source.address", src.Address)
		} else {
			add("source.host", host)
			add("source.port", port)
		}
		add("source.user", src.User)
		add("source.key_file", src.KeyFile)
		add("source.key_passphrase_file", src.KeyPassphraseFile)
		add("source.known_hosts", src.KnownHosts)
		add("source.host_keys", strings.Join(hostKeys, " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// settingValue writes v as is, or quoted when it could break the line
// format or be read back differently.
func settingValue(v string) string {
	if strings.TrimSpace(v) != v || strings.HasPrefix(v, `"`) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(v)
	}
	return v
}

// SettingsSHA256 is the hex SHA-256 of a Settings text.
func SettingsSHA256(settings string) string {
	sum := sha256.Sum256([]byte(settings))
	return hex.EncodeToString(sum[:])
}

// HostKeyFingerprints reads a known_hosts file and returns the SHA-256
// fingerprint of every key it pins ("ssh-ed25519 SHA256:..."), with its
// marker if any (@cert-authority, @revoked), sorted and without
// duplicates. Only public keys are read; a known_hosts file holds no
// secret.
func HostKeyFingerprints(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		marker, _, key, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		fp := key.Type() + " " + ssh.FingerprintSHA256(key)
		if marker != "" {
			fp = "@" + marker + " " + fp
		}
		out = append(out, fp)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// JobSettings renders every configured job's settings (Job.Settings), by
// job name. The host keys of each source are read from its known_hosts
// file once; a file that cannot be read is written as such in the
// settings (a transfer would fail on it too).
func (c *Config) JobSettings() map[string]string {
	keys := map[string][]string{}
	for name, s := range c.Sources {
		if s == nil {
			continue
		}
		fps, err := HostKeyFingerprints(s.KnownHosts)
		if err != nil {
			fps = []string{"(unreadable)"}
		}
		keys[name] = fps
	}
	out := make(map[string]string, len(c.Jobs))
	for _, j := range c.Jobs {
		if j == nil {
			continue
		}
		out[j.Name] = j.Settings(c.Sources[j.Source], keys[j.Source])
	}
	return out
}
