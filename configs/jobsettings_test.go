package configs

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// settingsInstall writes a source's key (with a passphrase), the
// passphrase file and a known_hosts file, and returns a configuration
// whose job uses them, plus the private key's PEM and the passphrase.
func settingsInstall(t *testing.T) (cfg *Config, keyPEM, passphrase string, hostKey ssh.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	passphrase = "correct horse battery staple 42"
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM = string(pem.EncodeToMemory(blk))
	hpub, _, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ = ssh.NewPublicKey(hpub)
	for name, body := range map[string]string{
		"id":          keyPEM,
		"id.pass":     passphrase + "\n",
		"known_hosts": "# pinned\n10.1.2.3 " + string(ssh.MarshalAuthorizedKey(hostKey)),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err = Parse([]byte(minimalFor()), dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, keyPEM, passphrase, hostKey
}

// TestJobSettingsNoSecretStable: the rendering names the source's host,
// port, user, the key files by path and the pinned host key by its
// fingerprint; it holds neither the private key nor its passphrase nor
// the host key itself; the defaults are in it; it is the same text every
// time, one "key: value" line each, in sorted order.
func TestJobSettingsNoSecretStable(t *testing.T) {
	cfg, keyPEM, passphrase, hostKey := settingsInstall(t)
	text := cfg.JobSettings()["registry-extract"]
	for _, want := range []string{
		"schedule: */15 * * * *\n", `records.trailer: ^TRL(\d+)$` + "\n", "source: moi\n", "source.host: 10.1.2.3\n", "source.port: 2222\n",
		"source.user: hbxfer\n", "source.key_file: " + cfg.Sources["moi"].KeyFile + "\n",
		"source.key_passphrase_file: " + cfg.Sources["moi"].KeyPassphraseFile + "\n",
		"source.host_keys: ssh-ed25519 " + ssh.FingerprintSHA256(hostKey) + "\n",
		"retry.attempts: 3\n", "retry.max: 30m0s\n", "records.max_inflated: 64GiB\n", "after_pull: keep\n", "checksum: sidecar\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("settings lack %q:\n%s", want, text)
		}
	}
	body := strings.Split(strings.TrimSpace(keyPEM), "\n")
	for _, secret := range append(body[1:len(body)-1], passphrase, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey)))) {
		if strings.Contains(text, secret) {
			t.Fatalf("the settings hold a secret or a key:\n%s", text)
		}
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, ": "); !ok || k == "" {
			t.Errorf("line %q is not key: value", l)
		} else if i > 0 && lines[i-1] >= l {
			t.Errorf("lines out of order: %q before %q", lines[i-1], l)
		}
	}
	again, err := Parse([]byte(minimalFor()), filepath.Dir(cfg.Sources["moi"].KeyFile))
	if err != nil || again.JobSettings()["registry-extract"] != text {
		t.Error("the same configuration must render the same text")
	}
	if cfg.JobSettings()["registry-extract"] != text || SettingsSHA256(text) != SettingsSHA256(cfg.JobSettings()["registry-extract"]) {
		t.Error("rendering twice differs")
	}
}

// minimalFor is the YAML of settingsInstall's configuration (for a
// second parse).
func minimalFor() string {
	return `
data_dir: data
sources:
  moi: {address: "10.1.2.3:2222", user: hbxfer, key_file: id, key_passphrase_file: id.pass, known_hosts: known_hosts}
jobs:
  - name: registry-extract
    source: moi
    officer: olga
    schedule: "*/15 * * * *"
    remote_dir: /outbox
    pattern: "HR_FULL_*.txt"
    records: {trailer: '^TRL(\d+)$'}
    purpose: vaccination
`
}

// TestJobSettingsChange: changing a setting of the job or of its source
// changes the text in that line only, and its digest; another pinned host
// key changes it too.
func TestJobSettingsChange(t *testing.T) {
	changed := map[string]func(c *Config){
		"schedule: 0 3 * * *":   func(c *Config) { c.Jobs[0].Schedule = "0 3 * * *" },
		"source.user: other":    func(c *Config) { c.Sources["moi"].User = "other" },
		"allow_weak: true":      func(c *Config) { c.Jobs[0].AllowWeak = true },
		"retention: 2y":         func(c *Config) { c.Jobs[0].Retention = Retention{Years: 2} },
		"source.port: 22":       func(c *Config) { c.Sources["moi"].Address = "10.1.2.3:22" },
		"after_pull: move:/old": func(c *Config) { c.Jobs[0].AfterPull = AfterPull{Action: AfterPullMove, Dir: "/old"} },
	}
	for line, change := range changed {
		cfg, _, _, _ := settingsInstall(t)
		before := cfg.JobSettings()["registry-extract"]
		change(cfg)
		after := cfg.JobSettings()["registry-extract"]
		if !strings.Contains(after, line+"\n") || strings.Contains(before, line+"\n") {
			t.Errorf("%s: not a new line of the settings:\n%s", line, after)
		}
		if SettingsSHA256(after) == SettingsSHA256(before) {
			t.Errorf("%s: the digest did not change", line)
		}
		old, now := strings.Split(before, "\n"), strings.Split(after, "\n")
		var gone, added int
		for _, l := range old {
			if !slices.Contains(now, l) {
				gone++
			}
		}
		for _, l := range now {
			if !slices.Contains(old, l) {
				added++
			}
		}
		if added != 1 || gone > 1 {
			t.Errorf("%s: %d lines added, %d removed; want the one setting", line, added, gone)
		}
	}
	// Another host key pinned in known_hosts (settingsInstall makes a new
	// one each time), all else equal.
	a, _, _, _ := settingsInstall(t)
	b, _, _, _ := settingsInstall(t)
	ta, tb := a.JobSettings()["registry-extract"], b.JobSettings()["registry-extract"]
	strip := func(s string) string {
		s = strings.ReplaceAll(s, filepath.Dir(a.Sources["moi"].KeyFile), "DIR")
		return strings.ReplaceAll(s, filepath.Dir(b.Sources["moi"].KeyFile), "DIR")
	}
	if ta == tb || strip(ta)[:strings.Index(strip(ta), "source.host_keys")] != strip(tb)[:strings.Index(strip(tb), "source.host_keys")] {
		t.Error("a different pinned host key must change the settings in its line")
	}
	// A value with a newline stays on its line.
	a.Jobs[0].Pattern = "A\nB"
	if !strings.Contains(a.JobSettings()["registry-extract"], `pattern: "A\nB"`+"\n") {
		t.Error("a value with a newline must be quoted")
	}
}

// TestJobSettingsCoverEveryOption: every option of a job (by its YAML
// name) is in the rendering of a job that sets them all, but the name
// (the event's job); the source's options are rendered or deliberately
// left out. A new option must be added to Settings, or to the lists here
// with its reason.
func TestJobSettingsCoverEveryOption(t *testing.T) {
	j := &Job{Name: "n", Source: "s", Officer: "o", Schedule: "@daily", RemoteDir: "/r", Pattern: "*", Kind: "change", Purpose: "emergency",
		EmergencyApproval: "E-1", Checksum: "manifest", Manifest: "M*", AllowWeak: true, AllowUnverified: true,
		Records:  Records{Header: "h", Trailer: "t", RecordLength: 10, Encoding: "big5", Gzip: "yes", MaxInflated: 1 << 20, MaxInflateRatio: 9},
		Sequence: "(\\d+)", ReadyMarker: ".done", Settle: Duration{60e9}, AfterPull: AfterPull{Action: AfterPullDelete}, FollowSymlinks: true,
		Retry: Retry{Attempts: 2, Initial: Duration{1e9}, Max: Duration{2e9}}, Retention: Retention{Days: 1}}
	src := &Source{Address: "h:1", User: "u", KeyFile: "/k", KeyPassphraseFile: "/p", KnownHosts: "/kh", Sessions: 1, Connections: 1, PacketSize: 4096,
		ConnectTimeout: Duration{1e9}, IOTimeout: Duration{1e9}}
	text := j.Settings(src, []string{"ssh-ed25519 SHA256:x"})
	keys := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		k, _, _ := strings.Cut(l, ": ")
		keys[k] = true
	}
	for _, k := range yamlKeys(reflect.TypeOf(Job{}), "") {
		if k != "name" && !keys[k] {
			t.Errorf("job option %s is not in the settings", k)
		}
	}
	// The source's options: what custody depends on is rendered; how
	// fast files come is not.
	rendered := map[string]string{"address": "source.host", "user": "source.user", "key_file": "source.key_file",
		"key_passphrase_file": "source.key_passphrase_file", "known_hosts": "source.known_hosts"}
	leftOut := []string{"connect_timeout", "io_timeout", "sessions", "connections", "packet_size"}
	for _, k := range yamlKeys(reflect.TypeOf(Source{}), "") {
		if r, ok := rendered[k]; ok {
			if !keys[r] {
				t.Errorf("source option %s is not in the settings as %s", k, r)
			}
		} else if !strings.Contains(strings.Join(leftOut, " "), k) {
			t.Errorf("source option %s is neither rendered nor listed as left out", k)
		}
	}
	if !keys["source.port"] || !keys["source.host_keys"] {
		t.Error("the port and the host keys must be rendered")
	}
}

// yamlKeys lists a struct's YAML keys, nested structs as a.b.
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && (f.Type == reflect.TypeOf(Records{}) || f.Type == reflect.TypeOf(Retry{})) {
			out = append(out, yamlKeys(f.Type, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}
