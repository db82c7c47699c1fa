package daemon

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestConsolePrintsOnA4: the certificate, the hand-over inventory and the
// review report print on A4 (the style sheet's @page size, which the PDF's
// pages take), and in print the navigation, forms and buttons are gone
// while the document stays.
func TestConsolePrintsOnA4(t *testing.T) {
	chromium(t)
	cf := newConsole(t, nil)
	st := cf.lifecycle(t, true)
	b, probs := newChrome(t)
	if err := chromedp.Do(b, browserLogin(cf.base, "auditor.a", cf.pw["auditor.a"])); err != nil {
		t.Fatal(err)
	}
	mediaBox := regexp.MustCompile(`/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]`)
	for _, p := range []struct{ path, document string }{
		{"/certificates/" + st.Destroyed, "article.document"},
		{"/handovers/" + st.Handover, "article.document"},
		{"/reviews/" + st.Review + "/report", "table.facts"},
	} {
		if err := chromedp.Do(b, chromedp.Navigate(cf.base+p.path), chromedp.WaitVisible(chromedp.CSS(p.document))); err != nil {
			fail(t, b, p.path, err)
		}
		if _, err := chromedp.Call(b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
			t.Fatal(err)
		}
		// What shows on paper: the document, and none of the screen's
		// navigation, forms or buttons.
		shown, err := chromedp.Run(b, chromedp.Evaluate[[]string](`(() => {
			const seen = el => el && getComputedStyle(el).display !== 'none' && el.getClientRects().length > 0;
			const out = [];
			for (const sel of ['header.top', 'form', 'button', 'nav', '.skip']) {
				for (const el of document.querySelectorAll(sel)) { if (seen(el)) out.push(sel); }
			}
			if (!seen(document.querySelector(`+"`"+p.document+"`"+`))) out.push('NO DOCUMENT');
			return out;
		})()`))
		if err != nil || len(shown) > 0 {
			t.Errorf("%s in print shows %v (%v)", p.path, shown, err)
		}
		prefer := true
		pdf, err := chromedp.Call(b, page.PrintToPDF, page.PrintToPDFParams{PreferCSSPageSize: &prefer})
		if err != nil {
			t.Fatal(err)
		}
		boxes := mediaBox.FindAllSubmatch(pdf.Data, -1)
		if len(boxes) == 0 || !bytes.HasPrefix(pdf.Data, []byte("%PDF")) {
			t.Fatalf("%s: not a PDF with pages (%d bytes)", p.path, len(pdf.Data))
		}
		for _, m := range boxes { // A4 is 595.28 × 841.89 points (to within rounding from mm)
			w, _ := strconv.ParseFloat(string(m[1]), 64)
			h, _ := strconv.ParseFloat(string(m[2]), 64)
			if math.Abs(w-595.28) > 2 || math.Abs(h-841.89) > 2 {
				t.Errorf("%s prints on %.2f × %.2f points, not A4", p.path, w, h)
			}
		}
		t.Logf("%s: %d A4 page(s)", p.path, len(boxes))
		if _, err := chromedp.Call(b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
			t.Fatal(err)
		}
	}
	if p := probs.get(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
