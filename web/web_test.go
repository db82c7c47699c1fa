package web

import (
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestROCDates: zh-TW dates are Republic of China dates (year − 1911;
// 1912 is 元年; earlier years are 民國前), in the display time zone.
func TestROCDates(t *testing.T) {
	taipei := time.FixedZone("Asia/Taipei", 8*3600)
	for _, c := range []struct {
		t              time.Time
		date, dateTime string
	}{
		{time.Date(2026, 12, 1, 14, 5, 0, 0, taipei), "中華民國115年12月1日", "115/12/01 14:05"},
		{time.Date(2026, 12, 1, 6, 5, 0, 0, time.UTC), "中華民國115年12月1日", "115/12/01 14:05"},
		{time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC), "中華民國115年12月1日", "115/12/01 00:00"},
		{time.Date(2011, 1, 9, 9, 30, 0, 0, taipei), "中華民國100年1月9日", "100/01/09 09:30"},
		{time.Date(2010, 10, 10, 0, 0, 0, 0, taipei), "中華民國99年10月10日", "099/10/10 00:00"},
		{time.Date(1912, 1, 1, 0, 0, 0, 0, taipei), "中華民國元年1月1日", "001/01/01 00:00"},
		{time.Date(1911, 10, 10, 0, 0, 0, 0, taipei), "中華民國前1年10月10日", "前1/10/10 00:00"},
	} {
		zh, en := newLang("zh-TW", taipei), newLang("en", taipei)
		if got := zh.Date(c.t); got != c.date {
			t.Errorf("Date(%v) = %q, want %q", c.t, got, c.date)
		}
		if got := zh.DateTime(c.t); got != c.dateTime {
			t.Errorf("DateTime(%v) = %q, want %q", c.t, got, c.dateTime)
		}
		if got, want := en.DateTime(c.t), c.t.In(taipei).Format("2006-01-02 15:04"); got != want {
			t.Errorf("English DateTime(%v) = %q, want %q", c.t, got, want)
		}
	}
	if got := newLang("zh-TW", time.UTC).Date(time.Time{}); got != "—" {
		t.Errorf("a zero time: %q", got)
	}
}

// TestCatalogs: every language has the same keys, no empty message, and
// every key a template or the code names literally is in the catalogs.
func TestCatalogs(t *testing.T) {
	zh, en := slices.Sorted(maps.Keys(msgZH)), slices.Sorted(maps.Keys(msgEN))
	if !slices.Equal(zh, en) {
		for _, k := range zh {
			if _, ok := msgEN[k]; !ok {
				t.Errorf("%q has no English message", k)
			}
		}
		for _, k := range en {
			if _, ok := msgZH[k]; !ok {
				t.Errorf("%q has no zh-TW message", k)
			}
		}
	}
	for code, m := range catalogs {
		for k, v := range m {
			if v == "" {
				t.Errorf("%s: %q is empty", code, k)
			}
		}
	}
	used := map[string]bool{}
	lit := regexp.MustCompile(`T "([a-z0-9_.-]+)"`)
	err := fs.WalkDir(files, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(files, p)
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nav {
		used[n.Key] = true
	}
	for _, k := range []string{"login.title", "run.title", "jobhist.title", "verify.title", "newrequest.here", "newrequest.on_dataset", "newrequest.on_handover", "newrequest.on_ledger", "newrequest.cli", "dataset.title", "request.title", "newrequest.title", "account.title", "log.title", "error.title", "cert.title", "handover.title", "handover.new", "review.title",
		"login.change", "login.need_totp", "login.locked", "login.disabled", "login.invalid", "login.failed", "login.mismatch", "login.unavailable"} {
		used[k] = true
	}
	for _, m := range []string{"ended", "idle", "bye", "done", "password", "filed", "released", "approved", "rejected", "cancelled", "verified", "destroyed", "accepted", "recorded", "closed"} {
		used[msgKey(m)] = true
	}
	for _, p := range []string{"code.invalid", "code.unauthenticated", "code.password_change_required", "code.forbidden", "code.not_found",
		"code.conflict", "code.busy", "code.refused", "code.unavailable", "code.internal"} {
		used[p] = true
	}
	for k := range used {
		if _, ok := msgZH[k]; !ok {
			t.Errorf("key %q is used but not in the catalogs", k)
		}
	}
	if msgKey("<script>") != "" {
		t.Error("only known message names may come from the query")
	}
}

// TestLocalPath: a return path after a form stays on this site.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{"/datasets?job=x": "/datasets?job=x", "//evil.example/": "/", "https://evil.example/": "/",
		"/\\evil.example": "/", "": "/", "/a\r\nSet-Cookie: x": "/"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
