package configs

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotifyBlock: the block as the issue gives it parses, relative secret
// files are resolved, and starttls defaults to required.
func TestNotifyBlock(t *testing.T) {
	const block = `notify:
  smtp: {address: "mail.example.org:587", from: "custodian@example.org", username: custodian, password_file: smtp.pass}
  webhooks: [{name: ops, url: "https://hooks.example.org/custodian", secret_file: ops.secret}]
  routes:
    - {kinds: [job.failed, file.quarantined, verify.failed], email: [officer@example.org], webhook: [ops]}
    - {kinds: [checkpoint.daily], email: [auditor@example.org]}
metrics: {listen: "127.0.0.1:9464"}
`
	cfg, err := Parse([]byte(minimal+block), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notify
	if n.SMTP == nil || n.SMTP.StartTLS != "required" || n.SMTP.PasswordFile != "/etc/custodian/smtp.pass" {
		t.Errorf("smtp: %+v", n.SMTP)
	}
	if w, ok := n.Webhook("ops"); !ok || w.SecretFile != "/etc/custodian/ops.secret" {
		t.Errorf("webhook: %+v %v", w, ok)
	}
	if !n.Configured() || len(n.Routes) != 2 || n.IncludeFileNames {
		t.Errorf("routes: %+v", n)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9464" || cfg.NotifyPath() != filepath.Join(cfg.DataDir, "notify.db") {
		t.Errorf("metrics %q, queue %s", cfg.Metrics.Listen, cfg.NotifyPath())
	}
	// No block: nothing is routed, no listener.
	cfg, err = Parse([]byte(minimal), "/etc/custodian")
	if err != nil || cfg.Notify.Configured() || cfg.Metrics.Listen != "" {
		t.Errorf("defaults: %+v %+v %v", cfg.Notify, cfg.Metrics, err)
	}
}

// TestNotifyProblems: every rule is named with its path and the fix.
func TestNotifyProblems(t *testing.T) {
	const block = `notify:
  smtp: {address: "mail.example.org", from: "not an address", username: u, starttls: opportunistic}
  webhooks:
    - {name: ops, url: "http://hooks.example.org/x"}
    - {name: ops, url: "ftp://x/y", secret_file: s}
  routes:
    - {kinds: [job.failed, job.exploded], email: ["Officer <o@example.org>"], webhook: [nope]}
    - {kinds: []}
`
	_, err := Parse([]byte(minimal+block), "/etc/custodian")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want invalid: %v", err)
	}
	for _, want := range []string{
		`notify.smtp.address: "mail.example.org" is not host:port`,
		`notify.smtp.from: "not an address" is not an email address`,
		`notify.smtp.starttls: "opportunistic" is not accepted; use required`,
		`notify.smtp.password_file: required with username`,
		`notify.webhooks[0].url: "http://hooks.example.org/x": plain http is allowed only to a loopback address`,
		`notify.webhooks[0].secret_file: required`,
		`notify.webhooks[1].name: "ops" is also the name of notify.webhooks[0]`,
		`notify.webhooks[1].url: "ftp://x/y": use an https:// URL`,
		`notify.routes[0].kinds[1]: "job.exploded" is not a kind; use job.failed, file.quarantined`,
		`notify.routes[0].email[0]: "Officer <o@example.org>" is not a plain email address`,
		`notify.routes[0].webhook[0]: "nope" is not defined under notify.webhooks; defined: ops`,
		`notify.routes[1].kinds: required`,
		`notify.routes[1]: name at least one email address or webhook`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// Mail routed without a server.
	_, err = Parse([]byte(minimal+"notify: {routes: [{kinds: [job.failed], email: [o@example.org]}]}\n"), "/etc/custodian")
	if err == nil || !strings.Contains(err.Error(), "notify.routes[0].email: needs notify.smtp") {
		t.Errorf("email without smtp: %v", err)
	}
	// http to a loopback webhook is fine.
	if _, err := Parse([]byte(minimal+`notify: {webhooks: [{name: local, url: "http://127.0.0.1:8080/h", secret_file: s}], routes: [{kinds: [job.failed], webhook: [local]}]}`+"\n"), "/etc/custodian"); err != nil {
		t.Errorf("loopback webhook: %v", err)
	}
}

// TestMetricsListenLoopbackOnly: plain HTTP metrics only on loopback; the
// refusal names the rule.
func TestMetricsListenLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:9464", "[::1]:9464", "localhost:9464", "127.0.0.2:1"} {
		if _, err := Parse([]byte(minimal+"metrics: {listen: \""+ok+"\"}\n"), "/etc/custodian"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:9464", ":9464", "10.0.0.5:9464", "metrics.example.org:9464", "[::]:9464"} {
		_, err := Parse([]byte(minimal+"metrics: {listen: \""+bad+"\"}\n"), "/etc/custodian")
		if err == nil || !strings.Contains(err.Error(), "metrics.listen: ") || !strings.Contains(err.Error(), "only on a loopback address") {
			t.Errorf("%s: want refusal naming the loopback rule, got %v", bad, err)
		}
	}
	if _, err := Parse([]byte(minimal+"metrics: {listen: \"9464\"}\n"), "/etc/custodian"); err == nil || !strings.Contains(err.Error(), "is not host:port") {
		t.Errorf("no host: %v", err)
	}
}

// TestNotifyExample: the commented notify: and metrics: blocks of the
// example, uncommented, parse.
func TestNotifyExample(t *testing.T) {
	text := string(Example)
	var block strings.Builder
	for _, start := range []string{"# notify:\n", "# metrics:"} {
		i := strings.Index(text, start)
		if i < 0 {
			t.Fatalf("the example documents no %q block", start)
		}
		for _, l := range strings.Split(text[i:], "\n") {
			if !strings.HasPrefix(l, "#") {
				break
			}
			block.WriteString(strings.TrimPrefix(l, "# ") + "\n")
		}
	}
	cfg, err := Parse([]byte(minimal+block.String()), "/etc/custodian")
	if err != nil {
		t.Fatalf("%v\n%s", err, block.String())
	}
	if len(cfg.Notify.Routes) != 2 || cfg.Notify.SMTP == nil || cfg.Metrics.Listen != "127.0.0.1:9464" {
		t.Errorf("example: %+v %+v", cfg.Notify, cfg.Metrics)
	}
}
