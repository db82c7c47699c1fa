package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"custodian/internal/synth"
)

// TestConsoleCrossOriginInBrowser: a page of another origin on the same
// host (so the same site: the SameSite=Strict session cookie does go with
// the request) makes a logged-in officer's browser post a form to the
// console to pause a job. The console refuses it as cross-origin and the
// job is not paused; the officer's own form, from the console, works.
func TestConsoleCrossOriginInBrowser(t *testing.T) {
	chromium(t)
	cf := newConsole(t, nil)
	job := cf.cfg.Jobs[0].Name
	// A run or two for the jobs page's recent runs (and its picture).
	cf.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 20, Seed: 7}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 8, TrailerDelta: 1}})
	for range 2 {
		if _, err := cf.as(t, "officer.a").Run(context.Background(), job, nil); err != nil {
			t.Fatal(err)
		}
	}
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>prize</title><form method="post" action="%s/jobs/%s/pause">
<input type="hidden" name="reason" value="paused by another site"><button id="go" type="submit">Claim</button></form>`, cf.base, job)
	}))
	t.Cleanup(evil.Close)
	if !strings.HasPrefix(evil.URL, "https://127.0.0.1:") || !strings.HasPrefix(cf.base, "https://127.0.0.1:") {
		t.Fatalf("both origins must be on 127.0.0.1 (the same site): %s %s", evil.URL, cf.base)
	}
	b, probs := newChrome(t)
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 800), browserLogin(cf.base, "officer.a", cf.pw["officer.a"])); err != nil {
		t.Fatalf("login: %v", err)
	}
	err := chromedp.Do(b,
		chromedp.Navigate(evil.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("go")),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.ID("main")), // the console's error page
	)
	if err != nil {
		t.Fatalf("the cross-origin post: %v", err)
	}
	text, err := chromedp.Run(b, chromedp.Text(chromedp.ID("main")))
	if err != nil || !strings.Contains(text, "cross-origin") {
		t.Fatalf("the console must refuse the cross-origin post, and say so: %q %v", text, err)
	}
	if p, err := cf.d.Service.JobPause(job); err != nil || p != nil {
		t.Fatalf("a cross-origin post paused the job: %+v %v", p, err)
	}
	// The same form on the console's own page is accepted: the session
	// was good, only the origin was refused.
	err = chromedp.Do(b,
		chromedp.Navigate(cf.base+"/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/jobs/`+job+`/pause"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[action="/jobs/`+job+`/pause"] [name="reason"]`), "the provider announced maintenance"),
		chromedp.Submit(chromedp.CSS(`form[action="/jobs/`+job+`/pause"]`)),
	)
	if err == nil {
		err = waitLocation(b, "/jobs?m=done")
	}
	if err != nil {
		text, _ := chromedp.Run(context.WithoutCancel(b), chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("pausing from the console: %v; the page says %q", err, text)
	}
	if p, err := cf.d.Service.JobPause(job); err != nil || p == nil {
		t.Fatalf("the console's own form did not pause the job: %v", err)
	}
	if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.ID("h-recent"))); err != nil {
		fail(t, b, "jobs page", err)
	}
	screenshot(t, b, "jobs")
	err = chromedp.Do(b, chromedp.Navigate(cf.base+"/account"), chromedp.WaitVisible(chromedp.ID("h-sessions")))
	if err != nil {
		fail(t, b, "my account", err)
	}
	screenshot(t, b, "my-account")
	if p := probs.get(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
