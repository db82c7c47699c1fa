package daemon

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/notifytest"
	"custodian/internal/sdnotify"
	"custodian/internal/synth"
)

// notifyConfig routes failures to one mailbox and one webhook, and the
// daily checkpoint to the auditors.
func notifyConfig(t *testing.T, s *notifytest.SMTP, w *notifytest.Webhook) configs.Notify {
	t.Helper()
	pass := filepath.Join(t.TempDir(), "smtp.pass")
	if err := os.WriteFile(pass, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return configs.Notify{
		SMTP: &configs.NotifySMTP{Address: s.Addr, From: "custodian@example.org", Username: s.User,
			PasswordFile: pass, StartTLS: "required", CAFile: s.CAFile},
		Webhooks: []configs.NotifyWebhook{{Name: "ops", URL: w.URL, SecretFile: w.SecretFile, CAFile: w.CAFile}},
		Routes: []configs.NotifyRoute{
			{Kinds: []string{"job.failed", "file.quarantined", "verify.failed"}, Email: []string{"officer@example.org"}, Webhook: []string{"ops"}},
		},
	}
}

func countEvents(evs []audit.Event, typ audit.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// TestFailedJobNotifiesAcrossRestart: a failed job (a file whose trailer
// count is wrong is quarantined) sends a mail to the in-process SMTP server
// and a signed webhook. Both receivers are down when it fails; the daemon
// is stopped with the deliveries queued and started again; once the
// receivers are up, both arrive, name the dataset and no file, and each is
// on the ledger as notify.delivered.
func TestFailedJobNotifiesAcrossRestart(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	w.SetFailing(true)
	f := newFixture(t, nil)
	f.cfg.Notify = notifyConfig(t, s, w)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1, TrailerDelta: 1}})
	cl, d, stop := f.serve(t)
	res, err := cl.Run(context.Background(), "extract", nil)
	if err != nil || !res.Failed() || len(res.Files) != 1 || res.Files[0].Outcome != "quarantined" {
		t.Fatalf("want a failed run: %+v %v", res, err)
	}
	id := res.Files[0].DatasetID
	if n := d.Notifier().Pending(); n != 4 { // job.failed and file.quarantined, by mail and webhook
		t.Fatalf("%d deliveries queued, want 4", n)
	}
	time.Sleep(200 * time.Millisecond) // the first attempts fail meanwhile
	stop()
	if n := countEvents(ledgerEvents(t, f), audit.EvNotifyDelivered); n != 0 || len(s.Mails()) != 0 || len(w.Requests()) != 0 {
		t.Fatalf("delivered while the receivers were down (%d events)", n)
	}

	s.Start(t)
	w.SetFailing(false)
	cl, _, stop = f.serve(t)
	waitFor(t, "two mails and two webhook requests", func() bool { return len(s.Mails()) == 2 && len(w.Requests()) == 2 })
	if len(w.Refused()) != 0 {
		t.Errorf("the receiver refused requests: %v", w.Refused())
	}
	kinds := map[string]bool{}
	for _, m := range s.Mails() {
		kinds["mail "+m.Header.Get("X-Custodian-Kind")] = true
		if !m.TLS || m.User == "" || m.To != "officer@example.org" || !strings.Contains(m.Body, id) || strings.Contains(m.Body, "HR_1") {
			t.Errorf("mail (TLS %v, user %q, to %s):\n%s", m.TLS, m.User, m.To, m.Body)
		}
	}
	for _, r := range w.Requests() {
		kinds["webhook "+string(r.Payload.Kind)] = true
		if !strings.Contains(r.Payload.Text, id) || strings.Contains(r.Payload.Text, "HR_1") || r.Payload.Fields["job"] != "extract" {
			t.Errorf("payload: %+v", r.Payload)
		}
	}
	for _, k := range []string{"mail job.failed", "mail file.quarantined", "webhook job.failed", "webhook file.quarantined"} {
		if !kinds[k] {
			t.Errorf("missing %s (got %v)", k, kinds)
		}
	}
	// The status after the restart knows the last run from the ledger.
	st, err := cl.Status(context.Background())
	if err != nil || st.Daemon == nil || len(st.Daemon.Jobs) != 1 || st.Daemon.Jobs[0].LastRun == nil || st.Daemon.Jobs[0].LastRun.Outcome != "failed" ||
		st.Daemon.Jobs[0].LastSuccess != nil {
		t.Errorf("status after restart: %+v %v", st.Daemon, err)
	}
	waitFor(t, "notify.delivered on the ledger", func() bool {
		return countEvents(eventsVia(t, f.as(t, "auditor.a")), audit.EvNotifyDelivered) == 4
	})
	stop()
	for _, ev := range ledgerEvents(t, f) {
		if ev.Type != audit.EvNotifyDelivered {
			continue
		}
		if ev.Details["recipient"] != "officer@example.org" && ev.Details["recipient"] != "ops" || ev.Details["kind"] == "" {
			t.Errorf("event: %+v", ev)
		}
		for k, v := range ev.Details {
			if strings.Contains(v, id) {
				t.Errorf("notify.delivered carries the message (%s=%q)", k, v)
			}
		}
	}
}

func eventsVia(t *testing.T, cl *Client) []audit.Event {
	t.Helper()
	evs, err := cl.Log(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]audit.Event, len(evs))
	for i, e := range evs {
		out[i] = audit.Event{Type: audit.EventType(e.Type), Details: e.Details}
	}
	return out
}

// TestDailyCheckpointMail: the signed checkpoint goes to the auditors at
// start, once a day, not again at every restart.
func TestDailyCheckpointMail(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	s.Start(t)
	f := newFixture(t, nil)
	f.cfg.Notify = notifyConfig(t, s, w)
	f.cfg.Notify.Routes = []configs.NotifyRoute{{Kinds: []string{"checkpoint.daily"}, Email: []string{"auditor@example.org"}}}
	_, _, stop := f.serve(t)
	waitFor(t, "the checkpoint mail", func() bool { return len(s.Mails()) == 1 })
	cpText, vkey, err := f.as(t, "auditor.a").Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := s.Mails()[0]
	origin := strings.SplitN(cpText, "\n", 2)[0]
	if m.To != "auditor@example.org" || m.Header.Get("X-Custodian-Kind") != "checkpoint.daily" ||
		!strings.Contains(m.Body, origin+"\n") || !strings.Contains(m.Body, "\n— "+origin+" ") || !strings.Contains(m.Body, vkey) {
		t.Errorf("checkpoint mail to %s:\n%s\nwant the signed checkpoint of %q and %s", m.To, m.Body, origin, vkey)
	}
	stop()
	_, _, stop = f.serve(t)
	time.Sleep(200 * time.Millisecond)
	stop()
	if n := len(s.Mails()); n != 1 {
		t.Errorf("%d checkpoint mails after a restart within the day, want 1", n)
	}
}

// scrape reads the text exposition at url into series → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMetricsEndpoint: after a good run and a failed one, the loopback
// endpoint serves every listed series with the values the ledger and the
// vault hold, and no label carries a file name.
func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	f.cfg.Metrics.Listen = freeLoopbackAddr(t)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 50, Seed: 1}})
	cl, _, _ := f.serve(t)
	ctx := context.Background()
	good, err := cl.Run(ctx, "extract", nil)
	if err != nil || good.Failed() {
		t.Fatalf("first run: %+v %v", good, err)
	}
	f.put(t, synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2, TrailerDelta: 1}})
	if bad, err := cl.Run(ctx, "extract", nil); err != nil || !bad.Failed() {
		t.Fatalf("second run: %+v %v", bad, err)
	}
	size := int64(0)
	if evs, err := f.as(t, "auditor.a").Log(ctx, 0, 10000); err == nil {
		size = int64(len(evs))
	}
	m := scrape(t, "http://"+f.cfg.Metrics.Listen+"/metrics")
	want := map[string]float64{
		`custodian_job_runs_total{job_name="extract",outcome="success"}`: 1,
		`custodian_job_runs_total{job_name="extract",outcome="failed"}`:  1,
		`custodian_datasets{state="verified"}`:                           1,
		`custodian_datasets{state="quarantined"}`:                        1,
		`custodian_datasets{state="held"}`:                               0,
		`custodian_sequence_gaps_held`:                                   0,
		`custodian_file_bytes_count{job_name="extract"}`:                 2,
		`custodian_job_run_duration_seconds_count{job_name="extract"}`:   2,
		`custodian_vault_objects`:                                        2,
		`custodian_vault_sealed`:                                         1,
		`custodian_approvals_pending`:                                    0,
		`custodian_accounts_locked`:                                      0,
		`custodian_ledger_verification_ok`:                               1,
		`custodian_notifications_pending`:                                0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if got := m["custodian_ledger_events"]; got < float64(size) || got > float64(size)+5 {
		t.Errorf("custodian_ledger_events = %v, the ledger had %d events just before", got, size)
	}
	if fi, err := os.Stat(f.cfg.LedgerPath()); err != nil || m["custodian_ledger_size_bytes"] <= 0 || m["custodian_ledger_size_bytes"] > float64(fi.Size()) {
		t.Errorf("custodian_ledger_size_bytes = %v", m["custodian_ledger_size_bytes"])
	}
	if m["custodian_vault_bytes"] < float64(good.Files[0].Size) {
		t.Errorf("custodian_vault_bytes = %v, smaller than the first file (%d)", m["custodian_vault_bytes"], good.Files[0].Size)
	}
	if sum := m[`custodian_file_bytes_sum{job_name="extract"}`]; sum < float64(good.Files[0].Size) {
		t.Errorf("custodian_file_bytes_sum = %v", sum)
	}
	last := m[`custodian_job_last_success_timestamp_seconds{job_name="extract"}`]
	if last < float64(good.Started.Unix()) || last > float64(good.Finished.Unix()+1) {
		t.Errorf("last success %v is not the good run's end (%v–%v)", last, good.Started.Unix(), good.Finished.Unix())
	}
	if v := m["custodian_ledger_last_verification_timestamp_seconds"]; v <= 0 {
		t.Errorf("last verification time %v", v)
	}
	for k := range m {
		if strings.Contains(k, "HR_") || strings.Contains(k, "ds-") {
			t.Errorf("a series names a file or dataset: %s", k)
		}
	}
	st, err := cl.Status(ctx)
	if err != nil || st.Daemon == nil || st.Daemon.UptimeSeconds < 0 || st.Daemon.Jobs[0].LastRun == nil ||
		st.Daemon.Jobs[0].LastRun.Outcome != "failed" || st.Daemon.Jobs[0].LastSuccess == nil || !st.Daemon.Jobs[0].LastSuccess.Equal(good.Finished) {
		t.Errorf("status: %+v %v", st.Daemon, err)
	}
}

// TestServeNotifiesSystemd: with $NOTIFY_SOCKET (a real datagram socket of
// the test's), serve sends READY=1 once it listens, WATCHDOG=1 at half of
// WATCHDOG_USEC, and STOPPING=1 when it shuts down.
func TestServeNotifiesSystemd(t *testing.T) {
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	msgs := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
	count := func(prefix string) int {
		n := 0
		for _, m := range msgs() {
			if strings.HasPrefix(m, prefix) {
				n++
			}
		}
		return n
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // 0.1 s: WATCHDOG=1 every 50 ms
	t.Setenv("WATCHDOG_PID", "")
	f := newFixture(t, nil)
	_, _, stop := f.serve(t)
	waitFor(t, "READY=1", func() bool { return count("READY=1") == 1 })
	if first := msgs()[0]; !strings.HasPrefix(first, "READY=1") || !strings.Contains(first, "STATUS=serving") {
		t.Errorf("first message %q, want READY=1 with a status", first)
	}
	waitFor(t, "two WATCHDOG=1", func() bool { return count("WATCHDOG=1") >= 2 })
	if count("STOPPING=1") != 0 {
		t.Fatal("STOPPING=1 before the stop")
	}
	stop()
	waitFor(t, "STOPPING=1", func() bool { return count("STOPPING=1") == 1 })
	n := count("WATCHDOG=1")
	time.Sleep(150 * time.Millisecond)
	if count("WATCHDOG=1") != n {
		t.Error("WATCHDOG=1 after the daemon stopped")
	}
	// A watchdog meant for another process is not fed.
	t.Setenv("WATCHDOG_PID", "1")
	if every := sdnotify.WatchdogInterval(); every != 0 {
		t.Errorf("watchdog for another PID: %v", every)
	}
}
