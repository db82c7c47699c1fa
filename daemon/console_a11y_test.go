package daemon

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	controlRE = regexp.MustCompile(`(?s)<(input|select|textarea)\b([^>]*)>`)
	attrRE    = regexp.MustCompile(`(?s)\b([a-z-]+)="([^"]*)"`)
	linkRE    = regexp.MustCompile(`<a\b[^>]*\bhref="(/[^"]*)"`)
)

// unlabelled lists a page's form controls that have no accessible name: a
// <label for=ID>, an enclosing <label>, or aria-label. Hidden inputs and
// buttons are not controls that need one.
func unlabelled(body string) []string {
	var out []string
	for _, m := range controlRE.FindAllStringSubmatchIndex(body, -1) {
		tag := body[m[0]:m[1]]
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(body[m[4]:m[5]], -1) {
			attrs[a[1]] = a[2]
		}
		if t := attrs["type"]; t == "hidden" || t == "submit" || t == "button" {
			continue
		}
		if attrs["aria-label"] != "" || attrs["aria-labelledby"] != "" {
			continue
		}
		if id := attrs["id"]; id != "" && strings.Contains(body, `<label for="`+id+`"`) {
			continue
		}
		before := body[:m[0]]
		if open := strings.LastIndex(before, "<label"); open >= 0 && !strings.Contains(before[open:], "</label>") {
			continue
		}
		out = append(out, tag)
	}
	return out
}

// TestConsoleAccessibleEverywhere walks the console as each role, from the
// home page along every link the pages show (a person's reachable
// console), and checks on every HTML page: it answers 200 (no link leads
// to a refusal), the document names its language, has one h1, and every
// form control has a label; and every id is unique, so that each label
// names one control.
func TestConsoleAccessibleEverywhere(t *testing.T) {
	cf := newConsole(t, nil)
	cf.seed(t)
	idRE := regexp.MustCompile(`\bid="([^"]+)"`)
	for _, user := range []string{"officer.a", "sue", "auditor.a", "adam", "dora", "cora"} {
		for _, lang := range []string{"zh-TW", "en"} {
			b := cf.login(t, user)
			seen := map[string]bool{}
			queue := []string{"/?lang=" + lang}
			pages := 0
			for len(queue) > 0 && pages < 80 {
				path := queue[0]
				queue = queue[1:]
				if seen[path] {
					continue
				}
				seen[path] = true
				resp, body := cf.get(t, b, path)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: GET %s (linked from a page): %s", user, path, resp.Status)
					continue
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					continue // a download: checkpoint, proof, CSV
				}
				pages++
				wantLang := map[string]string{"zh-TW": `<html lang="zh-Hant-TW"`, "en": `<html lang="en"`}[lang]
				if !strings.Contains(body, wantLang) {
					t.Errorf("%s %s: not %s", user, path, wantLang)
				}
				if n := strings.Count(body, "<h1"); n != 1 {
					t.Errorf("%s %s: %d h1 headings", user, path, n)
				}
				if bad := unlabelled(body); len(bad) > 0 {
					t.Errorf("%s %s: controls without a label: %v", user, path, bad)
				}
				var ids []string
				for _, m := range idRE.FindAllStringSubmatch(body, -1) {
					if slices.Contains(ids, m[1]) {
						t.Errorf("%s %s: id %q twice", user, path, m[1])
					}
					ids = append(ids, m[1])
				}
				for _, m := range linkRE.FindAllStringSubmatch(body, -1) {
					next, _, _ := strings.Cut(strings.ReplaceAll(m[1], "&amp;", "&"), "#")
					if strings.HasPrefix(next, "/static/") {
						continue
					}
					if !strings.Contains(next, "lang=") {
						sep := "?"
						if strings.Contains(next, "?") {
							sep = "&"
						}
						next += sep + "lang=" + lang
					}
					queue = append(queue, next)
				}
			}
			if pages < 5 {
				t.Errorf("%s (%s): only %d pages reached", user, lang, pages)
			}
		}
	}
}
