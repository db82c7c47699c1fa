package notify_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/notifytest"
	"custodian/notify"
	"custodian/transfer"
)

// recorder collects the ledger events the notifier records.
type recorder struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (r *recorder) record(ev audit.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.evs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// config routes job.failed to one address by mail and to one webhook.
func config(t *testing.T, s *notifytest.SMTP, w *notifytest.Webhook) configs.Notify {
	t.Helper()
	pass := filepath.Join(t.TempDir(), "smtp.pass")
	if err := writeFile(pass, s.Password+"\n"); err != nil {
		t.Fatal(err)
	}
	return configs.Notify{
		SMTP: &configs.NotifySMTP{Address: s.Addr, From: "custodian@example.org", Username: s.User,
			PasswordFile: pass, StartTLS: "required", CAFile: s.CAFile},
		Webhooks: []configs.NotifyWebhook{{Name: "ops", URL: w.URL, SecretFile: w.SecretFile, CAFile: w.CAFile}},
		Routes: []configs.NotifyRoute{{Kinds: []string{"job.failed", "verify.failed"}, Email: []string{"officer@example.org"}, Webhook: []string{"ops"}},
			{Kinds: []string{"checkpoint.daily"}, Email: []string{"auditor@example.org"}}},
	}
}

func fast(rec *recorder) notify.Options {
	return notify.Options{Record: rec.record, Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond,
		GiveUpAfter: time.Hour, Timeout: 5 * time.Second, Poll: 50 * time.Millisecond}
}

var msg = notify.Message{Subject: "job extract failed", Text: "Job extract failed.\nDatasets to look at: ds-1\n",
	Fields: map[string]string{"job": "extract"}}

// TestMailAndSignedWebhook: one notification reaches the mail server over
// STARTTLS with AUTH, and the webhook with a valid signature; each delivery
// is recorded with kind, channel and recipient, and no message text.
func TestMailAndSignedWebhook(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	s.Start(t)
	rec := &recorder{}
	n, err := notify.Open(filepath.Join(t.TempDir(), "notify.db"), config(t, s, w), fast(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Start()
	if k, err := n.Notify(notify.JobFailed, msg); err != nil || k != 2 {
		t.Fatalf("queued %d: %v", k, err)
	}
	waitFor(t, "both deliveries", func() bool { return len(rec.events()) == 2 })
	mails := s.Mails()
	if len(mails) != 1 {
		t.Fatalf("mails: %+v", mails)
	}
	m := mails[0]
	if !m.TLS || m.User != s.User || m.To != "officer@example.org" || m.From != "custodian@example.org" {
		t.Errorf("mail not sent as required (TLS %v, user %q, to %q)", m.TLS, m.User, m.To)
	}
	if m.Header.Get("Subject") != "[custodian] job extract failed" || m.Body != msg.Text+"\n" || m.Header.Get("X-Custodian-Kind") != "job.failed" {
		t.Errorf("mail: %q %q", m.Header.Get("Subject"), m.Body)
	}
	reqs := w.Requests()
	if len(reqs) != 1 || len(w.Refused()) != 0 {
		t.Fatalf("webhook: %+v refused %v", reqs, w.Refused())
	}
	if p := reqs[0].Payload; p.Kind != notify.JobFailed || p.Text != msg.Text || p.Fields["job"] != "extract" || p.ID == "" {
		t.Errorf("payload: %+v", p)
	}
	got := map[string]bool{}
	for _, ev := range rec.events() {
		if ev.Type != audit.EvNotifyDelivered || ev.Actor != notify.Actor || ev.Details["kind"] != "job.failed" || ev.Details["attempts"] != "1" {
			t.Errorf("event: %+v", ev)
		}
		for k, v := range ev.Details {
			if strings.Contains(v, "Datasets to look at") || k == "text" || k == "subject" {
				t.Errorf("the ledger event carries the message: %s=%q", k, v)
			}
		}
		got[ev.Details["channel"]+" "+ev.Details["recipient"]] = true
	}
	if !got["email officer@example.org"] || !got["webhook ops"] {
		t.Errorf("recorded deliveries: %v", got)
	}
	if n.Pending() != 0 {
		t.Errorf("%d still queued", n.Pending())
	}
	// A kind no route names queues nothing.
	if k, err := n.Notify(notify.FileHeld, msg); err != nil || k != 0 {
		t.Errorf("unrouted kind: %d %v", k, err)
	}
	if _, err := n.Notify("job.exploded", msg); err == nil {
		t.Error("an unknown kind was accepted")
	}
}

// TestRestartLosesNothing: with the mail server down and the webhook
// failing, the queued deliveries are retried; the notifier is closed with
// them queued and reopened; once both receivers are up, both arrive.
func TestRestartLosesNothing(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	w.SetFailing(true)
	rec := &recorder{}
	path := filepath.Join(t.TempDir(), "notify.db")
	cfg := config(t, s, w)
	n, err := notify.Open(path, cfg, fast(rec))
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	if _, err := n.Notify(notify.JobFailed, msg); err != nil {
		t.Fatal(err)
	}
	// Let a few attempts fail (the backoff is milliseconds here).
	time.Sleep(300 * time.Millisecond)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if len(rec.events()) != 0 || len(s.Mails()) != 0 || len(w.Requests()) != 0 {
		t.Fatalf("delivered while the receivers were down: %+v", rec.events())
	}

	n, err = notify.Open(path, cfg, fast(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Pending() != 2 {
		t.Fatalf("after reopening, %d deliveries are queued, want 2", n.Pending())
	}
	s.Start(t)
	w.SetFailing(false)
	n.Start()
	waitFor(t, "both deliveries after the restart", func() bool { return len(rec.events()) == 2 })
	if len(s.Mails()) != 1 || len(w.Requests()) != 1 {
		t.Fatalf("mails %d, webhook requests %d", len(s.Mails()), len(w.Requests()))
	}
	for _, ev := range rec.events() {
		if ev.Type != audit.EvNotifyDelivered || ev.Details["attempts"] == "1" {
			t.Errorf("want delivered after failed attempts: %+v", ev)
		}
	}
}

// TestNoMailWithoutStartTLS: a server that does not offer STARTTLS gets
// nothing; once the item is given up, notify.failed names the reason.
func TestNoMailWithoutStartTLS(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	s.NoStartTLS = true
	s.Start(t)
	rec := &recorder{}
	opt := fast(rec)
	opt.GiveUpAfter = 100 * time.Millisecond
	cfg := config(t, s, w)
	cfg.Routes = cfg.Routes[1:] // checkpoint.daily by mail only
	n, err := notify.Open(filepath.Join(t.TempDir(), "notify.db"), cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Start()
	if _, err := n.Notify(notify.CheckpointDaily, notify.CheckpointMessage("unit", "checkpoint text\n", "vkey")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery to be given up", func() bool { return len(rec.events()) == 1 })
	ev := rec.events()[0]
	if ev.Type != audit.EvNotifyFailed || ev.Details["recipient"] != "auditor@example.org" || ev.Details["kind"] != "checkpoint.daily" ||
		!strings.Contains(ev.Details["error"], "STARTTLS") {
		t.Errorf("event: %+v", ev)
	}
	if len(s.Mails()) != 0 {
		t.Error("mail was sent without STARTTLS")
	}
	if n.Pending() != 0 {
		t.Error("a given-up item stayed queued")
	}
}

// TestWrongCertificateRefused: a server whose certificate is not trusted
// gets nothing (the system roots do not know the test CA).
func TestWrongCertificateRefused(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	s.Start(t)
	rec := &recorder{}
	opt := fast(rec)
	opt.GiveUpAfter = 100 * time.Millisecond
	cfg := config(t, s, w)
	cfg.SMTP.CAFile, cfg.Webhooks[0].CAFile = "", ""
	n, err := notify.Open(filepath.Join(t.TempDir(), "notify.db"), cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Start()
	if _, err := n.Notify(notify.VerifyFailed, notify.VerifyFailedMessage("schedule, full", "entry 3", "/x", false)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both deliveries to be given up", func() bool { return len(rec.events()) == 2 })
	for _, ev := range rec.events() {
		if ev.Type != audit.EvNotifyFailed || !strings.Contains(ev.Details["error"], "certificate") {
			t.Errorf("event: %+v", ev)
		}
	}
	if len(s.Mails()) != 0 || len(w.Requests()) != 0 {
		t.Error("delivered to an untrusted server")
	}
}

// TestSignature: the receiver's check refuses another body, another
// secret and a malformed header.
func TestSignature(t *testing.T) {
	secret, body := []byte("0123456789abcdef0123"), []byte(`{"kind":"job.failed"}`)
	at := time.Unix(1700000000, 0)
	h := notify.Sign(secret, at, body)
	if !strings.HasPrefix(h, "t=1700000000,v1=") || len(h) != len("t=1700000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if got, err := notify.VerifySignature(secret, h, body); err != nil || !got.Equal(at) {
		t.Fatalf("valid signature refused: %v", err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		header       string
	}{
		"other body":   {secret, []byte(`{"kind":"job.finished"}`), h},
		"other secret": {[]byte("another secret of 20b"), body, h},
		"other time":   {secret, body, strings.Replace(h, "t=1700000000", "t=1700000001", 1)},
		"malformed":    {secret, body, "v1=abc"},
		"truncated":    {secret, body, h[:len(h)-2]},
	} {
		if _, err := notify.VerifySignature(c.secret, c.header, c.body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestKindsMatchConfig: the configuration accepts exactly the kinds the
// notifier knows.
func TestKindsMatchConfig(t *testing.T) {
	var names []string
	for _, k := range notify.Kinds {
		names = append(names, string(k))
	}
	if !slices.Equal(names, configs.NotifyKinds) {
		t.Errorf("notify.Kinds %v, configs.NotifyKinds %v", names, configs.NotifyKinds)
	}
}

// TestMessagesFromRunNameNoFiles: without include_file_names no message
// names a remote file or quotes a reason (which may name one); with it,
// they do.
func TestMessagesFromRunNameNoFiles(t *testing.T) {
	res := &transfer.RunResult{Job: "extract", Actor: "officer.a", Started: time.Unix(1700000000, 0), Error: "", Files: []transfer.FileOutcome{
		{Name: "HR_FULL_20260101.txt", Remote: "/outbox/HR_FULL_20260101.txt", Outcome: "verified", DatasetID: "ds-ok"},
		{Name: "HR_FULL_20260102.txt", Remote: "/outbox/HR_FULL_20260102.txt", Outcome: "quarantined", DatasetID: "ds-q", Reason: "trailer of HR_FULL_20260102.txt declares 6 records, counted 5"},
		{Name: "HR_CHG_0007.txt", Remote: "/outbox/HR_CHG_0007.txt", Outcome: "held", DatasetID: "ds-h", Reason: "sequence gap"},
		{Name: "HR_FULL_20260103.txt", Remote: "/outbox/HR_FULL_20260103.txt", Outcome: "failed", Reason: "HR_FULL_20260103.txt.sha256 missing"},
	}}
	ns := notify.FromRun(res, false)
	var kinds []notify.Kind
	for _, n := range ns {
		kinds = append(kinds, n.Kind)
		all := n.Message.Subject + n.Message.Text
		for _, v := range n.Message.Fields {
			all += " " + v
		}
		if strings.Contains(all, "HR_") || strings.Contains(all, "outbox") || strings.Contains(all, "trailer") {
			t.Errorf("%s names a file or quotes a reason: %q", n.Kind, all)
		}
	}
	if !slices.Equal(kinds, []notify.Kind{notify.JobFailed, notify.FileQuarantined, notify.FileHeld}) {
		t.Fatalf("kinds %v", kinds)
	}
	if !strings.Contains(ns[0].Message.Text, "ds-q ds-h") || !strings.Contains(ns[0].Message.Text, "failed: 1") ||
		ns[1].Message.Fields["dataset"] != "ds-q" {
		t.Errorf("messages lack the dataset IDs or counts: %q %+v", ns[0].Message.Text, ns[1].Message.Fields)
	}
	named := notify.FromRun(res, true)
	if !strings.Contains(named[0].Message.Text, "/outbox/HR_FULL_20260103.txt") || named[1].Message.Fields["remote_path"] != "/outbox/HR_FULL_20260102.txt" {
		t.Errorf("with include_file_names the names are missing: %q", named[0].Message.Text)
	}
	// A run that did not fail says nothing.
	if got := notify.FromRun(&transfer.RunResult{Job: "extract", Files: res.Files[:1]}, false); len(got) != 0 {
		t.Errorf("a good run notified: %+v", got)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
