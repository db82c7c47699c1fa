package configs

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"strings"
)

// Notify is the optional notify: block: who is told what, by email (SMTP
// with STARTTLS) and by webhook (a JSON POST signed with HMAC-SHA256).
// Package notify delivers it from a persistent queue.
type Notify struct {
	SMTP     *NotifySMTP     `yaml:"smtp"`
	Webhooks []NotifyWebhook `yaml:"webhooks"`
	Routes   []NotifyRoute   `yaml:"routes"`
	// IncludeFileNames puts registry file names in messages; otherwise
	// they name dataset IDs only.
	IncludeFileNames bool `yaml:"include_file_names"`
}

// NotifySMTP is notify.smtp: the mail server custodian submits to.
type NotifySMTP struct {
	// Address is host:port of the submission server (usually port 587).
	Address string `yaml:"address"`
	// From is the envelope and header sender.
	From     string `yaml:"from"`
	Username string `yaml:"username"`
	// PasswordFile holds the password (0600, like every secret file).
	PasswordFile string `yaml:"password_file"`
	// StartTLS is "required", the only accepted value: mail is never
	// sent in the clear.
	StartTLS string `yaml:"starttls"`
	// CAFile, if set, is a PEM bundle trusted for the server's certificate
	// instead of the system's roots (a private mail relay).
	CAFile string `yaml:"ca_file"`
}

// NotifyWebhook is one entry of notify.webhooks.
type NotifyWebhook struct {
	Name string `yaml:"name"`
	// URL must be https://, or http:// to a loopback address.
	URL string `yaml:"url"`
	// SecretFile holds the HMAC-SHA256 key (0600).
	SecretFile string `yaml:"secret_file"`
	// CAFile, if set, is a PEM bundle trusted for the receiver's
	// certificate instead of the system's roots.
	CAFile string `yaml:"ca_file"`
}

// NotifyRoute is one entry of notify.routes: the kinds it covers and where
// they go.
type NotifyRoute struct {
	Kinds   []string `yaml:"kinds"`
	Email   []string `yaml:"email"`
	Webhook []string `yaml:"webhook"`
}

// NotifyKinds are the kinds of notification (package notify keeps its
// constants equal to this list; a test checks).
var NotifyKinds = []string{
	"job.failed", "file.quarantined", "file.held",
	"approval.waiting", "approval.decided", "account.locked",
	"retention.due", "training.low", "verify.failed", "checkpoint.daily",
}

// Configured reports whether any notification is routed anywhere.
func (n *Notify) Configured() bool { return len(n.Routes) > 0 }

// Webhook returns the webhook named name.
func (n *Notify) Webhook(name string) (NotifyWebhook, bool) {
	for _, w := range n.Webhooks {
		if w.Name == name {
			return w, true
		}
	}
	return NotifyWebhook{}, false
}

// NotifyPath is the notification queue (bbolt), separate from the ledger.
func (c *Config) NotifyPath() string { return filepath.Join(c.DataDir, "notify.db") }

func (c *Config) applyNotifyDefaults() {
	if c.Notify.SMTP != nil && c.Notify.SMTP.StartTLS == "" {
		c.Notify.SMTP.StartTLS = "required"
	}
}

func (c *Config) resolveNotifyPaths(abs func(*string)) {
	if s := c.Notify.SMTP; s != nil {
		abs(&s.PasswordFile)
		abs(&s.CAFile)
	}
	for i := range c.Notify.Webhooks {
		abs(&c.Notify.Webhooks[i].SecretFile)
		abs(&c.Notify.Webhooks[i].CAFile)
	}
}

func (c *Config) validateNotify(p *problems) {
	n := &c.Notify
	if s := n.SMTP; s != nil {
		if s.Address == "" {
			p.add("notify.smtp.address", "required; host:port of the mail submission server, e.g. mail.example.org:587")
		} else if host, _, err := splitHostPort(s.Address); err != nil || host == "" {
			p.add("notify.smtp.address", "%q is not host:port (e.g. mail.example.org:587)", s.Address)
		}
		if s.From == "" {
			p.add("notify.smtp.from", "required; the sender address, e.g. custodian@example.org")
		} else if _, err := mail.ParseAddress(s.From); err != nil {
			p.add("notify.smtp.from", "%q is not an email address: %v", s.From, err)
		}
		if s.StartTLS != "required" {
			p.add("notify.smtp.starttls", "%q is not accepted; use required (mail is never sent without STARTTLS)", s.StartTLS)
		}
		if s.Username != "" && s.PasswordFile == "" {
			p.add("notify.smtp.password_file", "required with username: a file (0600) holding the password")
		}
		if s.Username == "" && s.PasswordFile != "" {
			p.add("notify.smtp.username", "required with password_file, or remove password_file")
		}
	}
	names := map[string]int{}
	for i, w := range n.Webhooks {
		at := fmt.Sprintf("notify.webhooks[%d]", i)
		if !jobNameRE.MatchString(w.Name) {
			p.add(at+".name", "%q: use 1-64 lower-case letters, digits, '.', '_' or '-'", w.Name)
		} else if prev, dup := names[w.Name]; dup {
			p.add(at+".name", "%q is also the name of notify.webhooks[%d]; names must be unique", w.Name, prev)
		} else {
			names[w.Name] = i
		}
		if err := checkWebhookURL(w.URL); err != nil {
			p.add(at+".url", "%v", err)
		}
		if w.SecretFile == "" {
			p.add(at+".secret_file", "required: a file (0600) holding the key that signs each request (HMAC-SHA256)")
		}
	}
	kinds := map[string]bool{}
	for _, k := range NotifyKinds {
		kinds[k] = true
	}
	for i, r := range n.Routes {
		at := fmt.Sprintf("notify.routes[%d]", i)
		if len(r.Kinds) == 0 {
			p.add(at+".kinds", "required; one or more of %s", strings.Join(NotifyKinds, ", "))
		}
		for j, k := range r.Kinds {
			if !kinds[k] {
				p.add(fmt.Sprintf("%s.kinds[%d]", at, j), "%q is not a kind; use %s", k, strings.Join(NotifyKinds, ", "))
			}
		}
		if len(r.Email) == 0 && len(r.Webhook) == 0 {
			p.add(at, "name at least one email address or webhook")
		}
		if len(r.Email) > 0 && n.SMTP == nil {
			p.add(at+".email", "needs notify.smtp: the mail server to send through")
		}
		for j, e := range r.Email {
			if a, err := mail.ParseAddress(e); err != nil || a.Name != "" {
				p.add(fmt.Sprintf("%s.email[%d]", at, j), "%q is not a plain email address (e.g. auditor@example.org)", e)
			}
		}
		for j, w := range r.Webhook {
			if _, ok := names[w]; !ok {
				p.add(fmt.Sprintf("%s.webhook[%d]", at, j), "%q is not defined under notify.webhooks; defined: %s", w, strings.Join(sortedKeys(names), ", "))
			}
		}
	}
}

// checkWebhookURL accepts https URLs, and http only to a loopback address.
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if s == "" || err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL; use https://host/path", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https", s)
	}
	return fmt.Errorf("%q: use an https:// URL", s)
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Metrics is the optional metrics: block: a Prometheus endpoint.
type Metrics struct {
	// Listen is host:port of a plain-HTTP listener serving /metrics; only
	// a loopback address is accepted. Empty: no listener.
	Listen string `yaml:"listen"`
}

func (c *Config) validateMetrics(p *problems) {
	if c.Metrics.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(c.Metrics.Listen)
	if err != nil || port == "" {
		p.add("metrics.listen", "%q is not host:port; use e.g. 127.0.0.1:9464", c.Metrics.Listen)
		return
	}
	if !isLoopback(host) {
		p.add("metrics.listen", "%q: plain HTTP metrics are served only on a loopback address (127.0.0.1, ::1, localhost); use 127.0.0.1:%s, or scrape /metrics on the HTTPS listener with an account of role metrics", c.Metrics.Listen, port)
	}
}
