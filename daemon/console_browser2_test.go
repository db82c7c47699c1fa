package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"custodian/accounts"
	"custodian/configs"
	"custodian/proof"
	"custodian/web"
)

// screenshotDir is where the browser tests write the console's pictures
// for docs/console.md, when CUSTODIAN_CONSOLE_SCREENSHOTS=1: they are
// made from the real pages, so regenerating them keeps them true.
const screenshotDir = "../docs/console"

// screenshot saves the current page as docs/console/NAME.png in zh-TW
// (the console's language) and NAME.en.png in English (1280 wide,
// paletted and compressed to stay small) when screenshots are asked for.
// The zh-TW picture needs a CJK font for chromium (Debian's
// fonts-noto-cjk); without one the test fails rather than save boxes.
func screenshot(t *testing.T, b context.Context, name string) {
	t.Helper()
	if os.Getenv("CUSTODIAN_CONSOLE_SCREENSHOTS") != "1" {
		return
	}
	if out, err := exec.Command("fc-list", ":lang=zh-tw").Output(); err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatal("CUSTODIAN_CONSOLE_SCREENSHOTS=1: no Traditional Chinese font for chromium (install fonts-noto-cjk)")
	}
	// The page is a GET; it is shown again with ?lang=, then the scenario
	// goes on from the page it was on.
	loc, err := chromedp.Run(b, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ code, suffix string }{{"zh-TW", ""}, {"en", ".en"}} {
		u := loc + "?lang=" + l.code
		if strings.Contains(loc, "?") {
			u = loc + "&lang=" + l.code
		}
		if err := chromedp.Do(b, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.ID("main"))); err != nil {
			t.Fatal(err)
		}
		raw, err := chromedp.Run(b, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		savePNG(t, raw, name+l.suffix)
	}
	if err := chromedp.Do(b, chromedp.Navigate(loc), chromedp.WaitVisible(chromedp.ID("main"))); err != nil {
		t.Fatal(err)
	}
}

// savePNG writes a screenshot to docs/console/NAME.png with a small
// palette of greys and the console's colours: text pages need no more,
// and the file stays a fraction of the size.
func savePNG(t *testing.T, raw []byte, name string) {
	t.Helper()
	src, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	pal := color.Palette{}
	for i := 0; i < 48; i++ {
		v := uint8(i * 255 / 47)
		pal = append(pal, color.RGBA{v, v, v, 255})
	}
	for _, c := range [][3]uint8{{0x0b, 0x4f, 0x9c}, {0xa4, 0x16, 0x1a}, {0xfd, 0xec, 0xea}, {0x7a, 0x10, 0x10}, {0xe7, 0xf4, 0xea},
		{0x14, 0x5a, 0x26}, {0xc2, 0x5e, 0x00}, {0x5a, 0x84, 0xc0}, {0xd0, 0x8a, 0x8c}, {0x85, 0xb8, 0x95}} {
		pal = append(pal, color.RGBA{c[0], c[1], c[2], 255})
	}
	dst := image.NewPaletted(src.Bounds(), pal)
	draw.Draw(dst, dst.Bounds(), src, src.Bounds().Min, draw.Src)
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// login and logout in the browser, through the forms.
func browserLogin(base, user, pw string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
}

// browserLogout presses "log out". After a form's POST, wait for its
// navigation first (waitLocation): a button of the page being replaced
// cannot be clicked ("could not find node").
func browserLogout() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("logout")),
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
}

// waitLocation waits (at most 20 s) until the page's URL contains want:
// the navigation a form's POST started has finished.
func waitLocation(b context.Context, want string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		loc, err := chromedp.Run(b, chromedp.Location())
		if err == nil && strings.Contains(loc, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the page did not reach %q (at %s, %v)", want, loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fail stops a browser scenario with what the page says.
func fail(t *testing.T, b context.Context, what string, err error) {
	t.Helper()
	loc, _ := chromedp.Run(context.WithoutCancel(b), chromedp.Location())
	text, _ := chromedp.Run(context.WithoutCancel(b), chromedp.Text(chromedp.CSS("body")))
	t.Fatalf("%s: %v; at %s the page says %q", what, err, loc, text)
}

// TestConsoleDestructionInBrowser: in a real browser, an officer requests
// the destruction of a dataset from its page; the officer's own request
// has no approve button and a forged approval POST from the officer's
// page is refused; a supervisor logs in, finds it in the inbox, sees the
// datasets in full and approves, and so does a second supervisor; the
// officer (with the vault unsealed, no passphrase asked) runs it, and the
// certificate shows the requester, both approvers and the executor. No
// page logs a script error or CSP violation.
func TestConsoleDestructionInBrowser(t *testing.T) {
	chromium(t)
	cf := newConsole(t, nil)
	dsID, _, _ := cf.seed(t)
	cf.addPerson(t, "sam", "Sam Supervisor", accounts.RoleSupervisor)
	ctx := context.Background()
	if _, err := cf.as(t, "officer.a").Unseal(ctx, []byte("a long test passphrase")); err != nil {
		t.Fatal(err)
	}
	b, probs := newChrome(t)
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	// The officer files.
	err := chromedp.Do(b,
		browserLogin(cf.base, "officer.a", cf.pw["officer.a"]),
		chromedp.Navigate(cf.base+"/datasets/"+dsID),
		chromedp.WaitVisible(chromedp.ID("destroy-form")),
	)
	if err != nil {
		fail(t, b, "officer: dataset page", err)
	}
	screenshot(t, b, "dataset")
	err = chromedp.Do(b,
		chromedp.SendKeys(chromedp.ID("destroy-reason"), "retention period of 5 years ended"),
		chromedp.Click(chromedp.ID("destroy-request")),
		chromedp.WaitVisible(chromedp.ID("destruction-items")),
	)
	if err != nil {
		fail(t, b, "officer: file destruction", err)
	}
	loc, _ := chromedp.Run(b, chromedp.Location())
	id := strings.TrimPrefix(strings.Split(loc, "?")[0], cf.base+"/requests/")
	if !strings.HasPrefix(id, "R") {
		t.Fatalf("after filing the browser is at %s", loc)
	}
	approve, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.getElementById("approve") !== null`))
	if err != nil || approve {
		t.Fatalf("the requester's page has an approve button (%v)", err)
	}
	// A forged approval from the requester's own page: refused.
	status, err := chromedp.Run(b, chromedp.Evaluate[int](`fetch("/requests/`+id+`/approve", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "reason=approving+my+own+request"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Fatalf("a forged self-approval: %d %v", status, err)
	}
	if err := chromedp.Do(b, browserLogout()); err != nil {
		fail(t, b, "logout", err)
	}
	// Two supervisors approve from their inbox.
	for i, who := range []string{"sue", "sam"} {
		err := chromedp.Do(b,
			browserLogin(cf.base, who, cf.pw[who]),
			chromedp.WaitVisible(chromedp.ID("h-inbox")),
		)
		if err != nil {
			fail(t, b, who+": login", err)
		}
		if i == 0 {
			screenshot(t, b, "home-supervisor")
		}
		err = chromedp.Do(b,
			chromedp.Click(chromedp.CSS(`a[href="/requests/`+id+`"]`)),
			chromedp.WaitVisible(chromedp.ID("destruction-items")),
			chromedp.WaitVisible(chromedp.ID("approve")),
		)
		if err != nil {
			fail(t, b, who+": the request from the inbox", err)
		}
		items, _ := chromedp.Run(b, chromedp.Text(chromedp.ID("destruction-items")))
		if !strings.Contains(items, dsID) || !strings.Contains(items, "officer.a") {
			t.Errorf("%s: the approval page must show the dataset and its custodian: %q", who, items)
		}
		if i == 0 {
			screenshot(t, b, "approve-destruction")
		}
		err = chromedp.Do(b,
			chromedp.SendKeys(chromedp.ID("decide-reason"), "retention schedule 115-07 checked"),
			chromedp.Click(chromedp.ID("approve")),
			chromedp.WaitVisible(chromedp.CSS(".flash")),
		)
		if err == nil {
			err = waitLocation(b, "m=approved")
		}
		if err == nil {
			err = chromedp.Do(b, browserLogout())
		}
		if err != nil {
			fail(t, b, who+": approve", err)
		}
	}
	// The officer runs it: no passphrase field anywhere.
	err = chromedp.Do(b,
		browserLogin(cf.base, "officer.a", cf.pw["officer.a"]),
		chromedp.Navigate(cf.base+"/requests/"+id),
		chromedp.WaitVisible(chromedp.ID("destroy")),
	)
	if err != nil {
		fail(t, b, "officer: the approved request", err)
	}
	if n, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('input[type="password"]').length`)); n != 0 {
		t.Error("the console must not ask for the vault passphrase")
	}
	err = chromedp.Do(b,
		chromedp.Click(chromedp.ID("destroy")),
		chromedp.WaitVisible(chromedp.ID("certificate")),
	)
	if err != nil {
		fail(t, b, "officer: run", err)
	}
	screenshot(t, b, "certificate")
	cert, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("table.signatures")))
	for _, who := range []string{"officer.a", "sue (supervisor)", "sam (supervisor)"} {
		if !strings.Contains(cert, who) {
			t.Errorf("the certificate's signatures lack %s: %q", who, cert)
		}
	}
	if strings.Count(cert, "officer.a") < 2 {
		t.Errorf("the officer requested and carried out: %q", cert)
	}
	if p := probs.get(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}

// TestConsoleAuditorInBrowser: an auditor verifies the ledger ("Verify
// now", its page refreshing itself until the report), searches the log,
// downloads an event's inclusion proof, and the downloaded file verifies
// (proof.Check); typing an officer's page is refused with
// no link to it; the review and training pages and the service's report
// load with no CSP violation or script error.
func TestConsoleAuditorInBrowser(t *testing.T) {
	chromium(t)
	cf := newConsole(t, nil)
	st := cf.lifecycle(t, false)
	b, probs := newChrome(t)
	dir := t.TempDir()
	err := chromedp.Do(b,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
			return err
		}),
		browserLogin(cf.base, "auditor.a", cf.pw["auditor.a"]),
		chromedp.WaitVisible(chromedp.ID("h-audit")),
		chromedp.Navigate(cf.base+"/ledger"),
		chromedp.WaitVisible(chromedp.ID("consistency-form")),
	)
	if err != nil {
		fail(t, b, "auditor: ledger", err)
	}
	screenshot(t, b, "ledger")
	// "Verify now": the verification runs in the daemon; its page shows
	// the progress and refreshes itself until the report is there.
	err = chromedp.Do(b,
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("verify-back")),
	)
	if err != nil {
		fail(t, b, "auditor: verify now", err)
	}
	waitFor(t, "the verification's report", func() bool {
		n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#verify-report').length`))
		return err == nil && n == 1
	})
	outcome, err := chromedp.Run(b, chromedp.Text(chromedp.ID("verify-outcome")))
	if err != nil || !strings.Contains(outcome, web.Message("zh-TW", "ledger.ok")) {
		t.Errorf("the verification's report: %q %v", outcome, err)
	}
	screenshot(t, b, "verify")
	err = chromedp.Do(b,
		chromedp.Click(chromedp.ID("verify-back")),
		chromedp.WaitVisible(chromedp.ID("consistency-form")),
	)
	if err != nil {
		fail(t, b, "auditor: back to the ledger", err)
	}
	err = chromedp.Do(b,
		chromedp.Navigate(cf.base+"/ledger/log"),
		chromedp.WaitVisible(chromedp.ID("l-type")),
		chromedp.SendKeys(chromedp.ID("l-type"), "dataset.destroyed"),
		chromedp.Click(chromedp.ID("log-search")),
	)
	if err == nil {
		waitFor(t, "the search's page", func() bool {
			ok, err := chromedp.Run(b, chromedp.Evaluate[bool](`location.search.includes("type=dataset.destroyed") && document.readyState === "complete"`))
			return err == nil && ok
		})
	}
	if err != nil {
		fail(t, b, "auditor: search", err)
	}
	rows, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('a[href^="/ledger/proofs/"]').length`))
	if rows != 1 {
		t.Errorf("the search for dataset.destroyed must find the one destruction, found %d", rows)
	}
	screenshot(t, b, "audit-log")
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`a[href^="/ledger/proofs/"]`))); err != nil {
		fail(t, b, "download", err)
	}
	// The browser may show the file under its name before the last byte
	// is written: wait until it holds a whole JSON document.
	var data []byte
	waitFor(t, "the proof download", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "inclusion-*.json"))
		if len(m) != 1 {
			return false
		}
		b, err := os.ReadFile(m[0])
		if err != nil || !json.Valid(b) {
			return false
		}
		data = b
		return true
	})
	_, vkey, err := cf.as(t, "auditor.a").Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := proof.Check(data, proof.Options{VerifierKey: vkey})
	if err != nil || !r.KeyTrusted || r.Event == nil || r.Event.Type != "dataset.destroyed" {
		t.Fatalf("the downloaded proof must verify under the ledger's key: %+v %v", r, err)
	}
	// Pages of other roles: no link, and typing the address is refused.
	for _, path := range []string{"/handovers/new", "/requests/" + st.Pending + "/destroy"} {
		if n, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('a[href="`+path+`"]').length`)); n != 0 {
			t.Errorf("the auditor's page links %s", path)
		}
		if strings.HasSuffix(path, "/destroy") {
			continue // a POST: the forged-POST checks cover it
		}
		err := chromedp.Do(b, chromedp.Navigate(cf.base+path), chromedp.WaitVisible(chromedp.ID("main")))
		if err != nil {
			fail(t, b, "typed "+path, err)
		}
		h1, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("main")))
		if !strings.Contains(h1, web.Message("zh-TW", "code.forbidden")) {
			t.Errorf("typing %s: the page says %q", path, h1)
		}
	}
	// Reviews, the report and training render without violations.
	err = chromedp.Do(b,
		chromedp.Navigate(cf.base+"/reviews/"+st.Review),
		chromedp.WaitVisible(chromedp.ID("review-report")),
	)
	if err != nil {
		fail(t, b, "review page", err)
	}
	screenshot(t, b, "review")
	err = chromedp.Do(b,
		chromedp.Click(chromedp.ID("review-report")),
		chromedp.WaitVisible(chromedp.CSS("table.facts")),
		chromedp.Navigate(cf.base+"/training"),
		chromedp.WaitVisible(chromedp.ID("training-report")),
	)
	if err != nil {
		fail(t, b, "report and training", err)
	}
	// A job's configuration history, after a reload changed its schedule.
	nc := *cf.d.Runner.CurrentConfig()
	j := *nc.Jobs[0]
	j.Schedule = "CRON_TZ=Asia/Taipei 0 3 * * *"
	nc.Jobs = []*configs.Job{&j}
	cf.d.recordJobSettings(&nc, "reload")
	err = chromedp.Do(b,
		chromedp.Navigate(cf.base+"/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/jobs/`+j.Name+`/history"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/jobs/`+j.Name+`/history"]`)),
		chromedp.WaitVisible(chromedp.CSS("ins.diff-add")),
	)
	if err != nil {
		fail(t, b, "job history", err)
	}
	screenshot(t, b, "job-history")
	if p := probs.get(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
