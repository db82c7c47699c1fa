package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDemoConsole: `custodian demo --console` (on a free port instead of
// 8443) prints the console's address, the certificate's fingerprint and
// --ca path, and a one-time password per role; the certificate is the one
// served; the supervisor logs in with the printed password, must set a
// new one, and finds the officer's pending destruction, an export and a
// hand-over in the inbox (and an emergency use waits for the director); the
// command stops cleanly when its context ends (Ctrl-C).
func TestDemoConsole(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(t.TempDir(), "demo")
	var out syncBuffer
	root := newRoot(&out, &out)
	root.SetArgs([]string{"demo", "--console", "--console-addr", addr, "--records", "2000", "--dir", dir})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "Console ready.") {
		select {
		case err := <-done:
			t.Fatalf("demo --console ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo --console did not get ready:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	text := out.String()
	for _, want := range []string{"URL:         https://" + addr + "/", "SHA-256 fingerprint ", "--ca ", "web.supervisor ", "web.auditor ",
		"web.admin ", "web.director ", "web.contractor ", "web.officer ", "HELD"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	ca := regexp.MustCompile(`--ca (\S+)`).FindStringSubmatch(text)
	pw := regexp.MustCompile(`web\.supervisor +supervisor +(\S+)`).FindStringSubmatch(text)
	pending := regexp.MustCompile(`destruction (R\d+) filed by demo\.officer`).FindStringSubmatch(text)
	if ca == nil || pw == nil || pending == nil {
		t.Fatalf("cannot read the CA, the password or the pending request:\n%s", text)
	}
	pem, err := os.ReadFile(ca[1])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("the --ca file holds no certificate")
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + addr
	post := func(path string, form url.Values) *http.Response {
		resp, err := b.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post("/login", url.Values{"username": {"web.supervisor"}, "password": {pw[1]}}); resp.StatusCode == http.StatusSeeOther {
		t.Fatal("a one-time password must be changed at the first login")
	}
	resp := post("/login", url.Values{"username": {"web.supervisor"}, "password": {pw[1]}, "new_password": {"Demo-Console-Pass-2026"}, "new_password2": {"Demo-Console-Pass-2026"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the printed password: %s", resp.Status)
	}
	r, err := b.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(home), `id="h-inbox"`) || !strings.Contains(string(home), `href="/requests/`+pending[1]+`"`) {
		t.Fatalf("the supervisor's inbox must hold %s", pending[1])
	}
	// Every kind of work waits for someone: an export and a hand-over for
	// a supervisor, an emergency use for the director.
	for _, re := range []string{`export (R\d+) filed by demo\.officer`, `hand-over (R\d+) from demo\.officer to web\.officer`} {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil || !strings.Contains(string(home), `href="/requests/`+m[1]+`"`) {
			t.Errorf("the supervisor's inbox lacks the request of %q (%v)", re, m)
		}
	}
	if !regexp.MustCompile(`emergency use R\d+ filed by demo\.officer, waiting for the director`).MatchString(text) {
		t.Error("no emergency use waits for the director")
	}
	// The reloaded schedule is in the job's configuration history.
	r, err = b.Get(base + "/jobs/registry-changes/history?lang=en")
	if err != nil {
		t.Fatal(err)
	}
	hist, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(hist), "*/15 * * * *") || !strings.Contains(string(hist), "*/30 * * * *") {
		t.Errorf("the job's history must show the schedule's change: %s\n%s", r.Status, hist)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopping: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo --console did not stop when its context ended")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the console still answers after the demo stopped")
	}
}
