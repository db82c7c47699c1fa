package web

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"custodian/service"
)

// Lang is one language of the console: its message catalog and its way of
// writing dates.
type Lang struct {
	Code string // zh-TW or en
	HTML string // the html lang attribute
	msgs map[string]string
	loc  *time.Location
}

// catalogs are the languages, by code; zh-TW is the default.
var catalogs = map[string]map[string]string{"zh-TW": msgZH, "en": msgEN}

// DefaultLang is the console's language unless the person chose another.
const DefaultLang = "zh-TW"

// lang picks the request's language: ?lang=, else the cookie, else zh-TW.
func (c *Console) lang(r *http.Request) *Lang {
	code := r.URL.Query().Get("lang")
	if _, ok := catalogs[code]; !ok {
		code = ""
		if ck, err := r.Cookie(langCookie); err == nil {
			if _, ok := catalogs[ck.Value]; ok {
				code = ck.Value
			}
		}
	}
	if code == "" {
		code = DefaultLang
	}
	return newLang(code, c.opts.Location)
}

func newLang(code string, loc *time.Location) *Lang {
	html := "en"
	if code == "zh-TW" {
		html = "zh-Hant-TW"
	}
	return &Lang{Code: code, HTML: html, msgs: catalogs[code], loc: loc}
}

// T returns the message key in the language; a missing key shows itself
// (and fails the catalog test).
func (l *Lang) T(key string) string {
	if m, ok := l.msgs[key]; ok {
		return m
	}
	return key
}

// Field names a request's detail (its key as stored, e.g. "datasets"):
// the catalog's "field.KEY" where there is one, else the key itself, so
// a detail added later still shows.
func (l *Lang) Field(key string) string {
	if m, ok := l.msgs["field."+key]; ok {
		return m
	}
	return key
}

// Tf formats the message key with args.
func (l *Lang) Tf(key string, args ...any) string { return fmt.Sprintf(l.T(key), args...) }

// Date writes a day: 中華民國115年12月1日 in zh-TW, 2026-12-01 in English.
func (l *Lang) Date(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.In(l.loc)
	if l.Code == "zh-TW" {
		return ROCDate(t)
	}
	return t.Format("2006-01-02")
}

// DateTime writes a time to the minute: 115/12/01 14:05 in zh-TW,
// 2026-12-01 14:05 in English.
func (l *Lang) DateTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.In(l.loc)
	if l.Code == "zh-TW" {
		return ROCDateTime(t)
	}
	return t.Format("2006-01-02 15:04")
}

// TimePtr writes *t, or a dash.
func (l *Lang) TimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return l.DateTime(*t)
}

// rocYear is the Republic of China year of a Gregorian year: 1912 is
// 民國元年 (1); years before are 民國前 N 年.
func rocYear(y int) (n int, before bool) {
	if y >= 1912 {
		return y - 1911, false
	}
	return 1912 - y, true
}

// ROCDate writes t's day as a Republic of China date: 中華民國115年12月1日
// (元年 for 1912, 民國前N年 before it).
func ROCDate(t time.Time) string {
	n, before := rocYear(t.Year())
	y := fmt.Sprintf("%d", n)
	if n == 1 && !before {
		y = "元"
	}
	if before {
		return fmt.Sprintf("中華民國前%s年%d月%d日", y, int(t.Month()), t.Day())
	}
	return fmt.Sprintf("中華民國%s年%d月%d日", y, int(t.Month()), t.Day())
}

// ROCDateTime writes t as 115/12/01 14:05 (a year before 民國 as 前N).
func ROCDateTime(t time.Time) string {
	n, before := rocYear(t.Year())
	y := fmt.Sprintf("%03d", n)
	if before {
		y = fmt.Sprintf("前%d", n)
	}
	return fmt.Sprintf("%s/%02d/%02d %02d:%02d", y, int(t.Month()), t.Day(), t.Hour(), t.Minute())
}

var funcs = template.FuncMap{
	"arr": func(v ...any) []any { return v },
	// trimdiff keeps a diff's changed lines with two lines around each.
	"trimdiff": func(d []service.DiffLine) []service.DiffLine { return service.TrimDiff(d, 2) },
	"join": func(sep string, v any) string {
		switch x := v.(type) {
		case []string:
			return strings.Join(x, sep)
		default:
			return fmt.Sprint(x)
		}
	},
	// pairs lists a map's entries in key order.
	"pairs": func(m map[string]string) [][2]string {
		out := make([][2]string, 0, len(m))
		for k, v := range m {
			out = append(out, [2]string{k, v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
		return out
	},
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
}

// Message returns key's message in language code (tests compare pages
// with the catalog).
func Message(code, key string) string { return newLang(code, time.UTC).T(key) }
