package daemon

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// downloads are console links that answer with a file, not a page.
func download(path string) bool {
	u, err := url.Parse(path)
	if err != nil {
		return true
	}
	return strings.HasPrefix(u.Path, "/ledger/checkpoint") || strings.HasPrefix(u.Path, "/ledger/proofs/") ||
		strings.HasPrefix(u.Path, "/ledger/consistency") || u.Query().Get("format") == "csv"
}

// TestConsoleEveryPageInBrowser: chromium walks the console as an
// officer, a supervisor, an auditor and an admin, from the home page
// along every link each page shows (the pages a person can reach), in
// zh-TW and, for the auditor, in English too; no page logs a script error
// or a Content-Security-Policy violation, and every page has its main
// content and the log-out button.
func TestConsoleEveryPageInBrowser(t *testing.T) {
	chromium(t)
	cf := newConsole(t, nil)
	cf.lifecycle(t, true)
	type walk struct{ user, lang string }
	for _, w := range []walk{{"officer.a", "zh-TW"}, {"sue", "zh-TW"}, {"auditor.a", "zh-TW"}, {"auditor.a", "en"}, {"adam", "zh-TW"}} {
		b, probs := newChrome(t)
		if err := chromedp.Do(b, browserLogin(cf.base, w.user, cf.pw[w.user])); err != nil {
			t.Fatalf("%s: login: %v", w.user, err)
		}
		seen := map[string]bool{}
		queue := []string{"/"}
		pages := 0
		for len(queue) > 0 && pages < 40 {
			path := queue[0]
			queue = queue[1:]
			if seen[path] || download(path) {
				continue
			}
			seen[path] = true
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			err := chromedp.Do(b, chromedp.Navigate(cf.base+path+sep+"lang="+w.lang), chromedp.WaitReady(chromedp.CSS("body")))
			if err != nil {
				fail(t, b, w.user+" "+path, err)
			}
			pages++
			// A review report is the service's printable document, opened
			// from the review's page: no navigation, no log-out button.
			if !strings.HasSuffix(strings.SplitN(path, "?", 2)[0], "/report") {
				n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#main').length + document.querySelectorAll('#logout').length`))
				if err != nil || n != 2 {
					t.Errorf("%s %s: main content and log-out button: %d of 2 (%v)", w.user, path, n, err)
				}
			}
			links, err := chromedp.Run(b, chromedp.Evaluate[[]string](
				`Array.from(document.querySelectorAll('a[href^="/"]')).map(a => a.getAttribute('href').split('#')[0])`))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				if !strings.HasPrefix(l, "/static/") && !strings.Contains(l, "lang=") {
					queue = append(queue, l)
				}
			}
		}
		if pages < 5 {
			t.Errorf("%s: only %d pages reached", w.user, pages)
		}
		if p := probs.get(); len(p) > 0 {
			t.Errorf("%s (%s): the browser reported problems on the way: %v", w.user, w.lang, p)
		}
		t.Logf("%s (%s): %d pages", w.user, w.lang, pages)
	}
}
