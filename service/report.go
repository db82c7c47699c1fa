package service

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file renders the report of a sampling review for the head of
// agency: scope, method and seed, the sample, findings, investigations and
// signatures, as HTML (printed on A4) or CSV, in Traditional Chinese
// (the default, with Republic of China dates) or English. Every string
// shown is in the one message catalog below.

// Report formats and languages.
const (
	FormatHTML = "html"
	FormatCSV  = "csv"
	LangZhTW   = "zh-TW"
	LangEn     = "en"
)

// ReportLangs are the report's languages, the default first.
var ReportLangs = []string{LangZhTW, LangEn}

// messages is the message catalog: every string of the report by
// language.
var messages = map[string]map[string]string{
	LangZhTW: {
		"title":                 "個人資料查詢紀錄抽查報告",
		"review":                "抽查編號",
		"state":                 "狀態",
		"state.open":            "進行中",
		"state.closed":          "已結案",
		"scope":                 "抽查範圍",
		"period":                "期間",
		"period.range":          "%s 至 %s（不含）",
		"population":            "期間內查詢紀錄筆數",
		"persons":               "查詢人數",
		"ledger_size":           "抽樣時之紀錄簿事件數",
		"method":                "抽樣方法及種子",
		"method.text":           "依人分組，每人之查詢紀錄以 SHA-256（種子 ‖ 紀錄簿序號，8 位元組大端序）排序，取前 max(⌈筆數 × 比例⌉, min(每人至少筆數, 筆數)) 筆。任何人得以紀錄簿及種子重新抽出相同樣本。",
		"method.name":           "方法",
		"rate":                  "抽樣比例",
		"min":                   "每人至少筆數",
		"seed":                  "種子",
		"sample_sha256":         "樣本序號摘要（SHA-256）",
		"sample":                "抽查樣本及結果",
		"sample.count":          "樣本筆數",
		"col.index":             "紀錄簿序號",
		"col.date":              "日期",
		"col.person":            "查詢人",
		"col.type":              "類別",
		"col.dataset":           "資料集",
		"col.purpose":           "目的",
		"col.case":              "案號",
		"col.verdict":           "結果",
		"col.note":              "說明",
		"col.by":                "審核人",
		"col.outcome":           "調查結果",
		"col.closed":            "結案",
		"type.dataset.read":     "查詢",
		"type.dataset.exported": "匯出",
		"verdict.justified":     "正當",
		"verdict.anomaly":       "異常",
		"verdict.none":          "未審核",
		"findings":              "審核結果統計",
		"findings.justified":    "正當",
		"findings.anomaly":      "異常",
		"findings.pending":      "未審核",
		"investigations":        "異常調查",
		"investigations.none":   "無異常，無須調查。",
		"investigation.open":    "調查中",
		"signatures":            "簽署",
		"signed.started":        "開始抽查",
		"signed.closed":         "結案",
		"signed.not_yet":        "尚未結案",
		"signed.head":           "機關首長",
		"signed.sign_here":      "（簽章）",
		"generated":             "製表日期",
		"none":                  "（無）",
		"sep":                   "：",
	},
	LangEn: {
		"title":                 "Sampling review of personal data access records",
		"review":                "Review",
		"state":                 "State",
		"state.open":            "open",
		"state.closed":          "closed",
		"scope":                 "Scope",
		"period":                "Period",
		"period.range":          "%s to %s (exclusive)",
		"population":            "Access records in the period",
		"persons":               "People with access records",
		"ledger_size":           "Ledger events at the draw",
		"method":                "Method and seed",
		"method.text":           "Grouped by person; each person's access records are ordered by SHA-256(seed ‖ ledger index as 8 bytes big-endian) and the first max(⌈n × rate⌉, min(minimum per person, n)) are drawn. Anyone can redraw the same sample from the ledger and the seed.",
		"method.name":           "Method",
		"rate":                  "Rate",
		"min":                   "Minimum per person",
		"seed":                  "Seed",
		"sample_sha256":         "Digest of the sampled indexes (SHA-256)",
		"sample":                "Sample and findings",
		"sample.count":          "Sampled records",
		"col.index":             "Ledger index",
		"col.date":              "Date",
		"col.person":            "Person",
		"col.type":              "Kind",
		"col.dataset":           "Dataset",
		"col.purpose":           "Purpose",
		"col.case":              "Case",
		"col.verdict":           "Finding",
		"col.note":              "Note",
		"col.by":                "Reviewed by",
		"col.outcome":           "Outcome",
		"col.closed":            "Closed",
		"type.dataset.read":     "read",
		"type.dataset.exported": "export",
		"verdict.justified":     "justified",
		"verdict.anomaly":       "anomaly",
		"verdict.none":          "pending",
		"findings":              "Findings",
		"findings.justified":    "Justified",
		"findings.anomaly":      "Anomalies",
		"findings.pending":      "Pending",
		"investigations":        "Investigations",
		"investigations.none":   "No anomalies; nothing to investigate.",
		"investigation.open":    "open",
		"signatures":            "Signatures",
		"signed.started":        "Review started",
		"signed.closed":         "Review closed",
		"signed.not_yet":        "not closed yet",
		"signed.head":           "Head of agency",
		"signed.sign_here":      "(signature)",
		"generated":             "Generated",
		"none":                  "(none)",
		"sep":                   ": ",
	},
}

var enMonths = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

// LongDate writes a date in full: 中華民國115年12月1日, or 1 December 2026.
func LongDate(lang string, t time.Time) string {
	t = t.In(ReportZone)
	if lang == LangEn {
		return fmt.Sprintf("%d %s %d", t.Day(), enMonths[t.Month()-1], t.Year())
	}
	return fmt.Sprintf("中華民國%d年%d月%d日", t.Year()-1911, t.Month(), t.Day())
}

// ShortDate writes a date for tables: 115/12/01, or 2026-12-01.
func ShortDate(lang string, t time.Time) string {
	t = t.In(ReportZone)
	if lang == LangEn {
		return t.Format(time.DateOnly)
	}
	return fmt.Sprintf("%d/%02d/%02d", t.Year()-1911, t.Month(), t.Day())
}

type reportRow struct {
	Sampled
	Name     string
	Date     string
	Kind     string
	Verdict  string
	Closed   string
	Outcome  string
	Anomaly  bool
	Resolved bool
}

type reportData struct {
	R                          Review
	M                          map[string]string
	Lang                       string
	From, Until, Generated     string
	StartedOn, ClosedOn        string
	StartedName, ClosedName    string
	Rows                       []reportRow
	Justified, Anomalies, Pend int
	Investigations             []reportRow
}

// ReviewReport renders review id's report in format (html or csv) and
// lang (zh-TW or en; empty means zh-TW).
func (s *Service) ReviewReport(ctx context.Context, a Actor, id, format, lang string) ([]byte, error) {
	if err := s.authorize(a, ActReadReview, Resource{Kind: "review", ID: id}); err != nil {
		return nil, err
	}
	if lang == "" {
		lang = LangZhTW
	}
	if !slices.Contains(ReportLangs, lang) {
		return nil, fmt.Errorf("%w: lang: %q; use %s", ErrInvalid, lang, strings.Join(ReportLangs, " or "))
	}
	if format != FormatHTML && format != FormatCSV {
		return nil, fmt.Errorf("%w: format: %q; use html or csv", ErrInvalid, format)
	}
	v, err := s.review(id)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	name := func(user string) string {
		if n, ok := names[user]; ok {
			return n
		}
		n := user
		if acct, err := s.account(user); err == nil && acct != nil && acct.FullName != "" && acct.FullName != user {
			n = acct.FullName + " (" + user + ")"
		}
		names[user] = n
		return n
	}
	return renderReport(v, format, lang, s.now(), name)
}

func renderReport(v Review, format, lang string, now time.Time, name func(string) string) ([]byte, error) {
	m := messages[lang]
	d := reportData{R: v, M: m, Lang: lang, From: LongDate(lang, v.From), Until: LongDate(lang, v.Until),
		Generated: LongDate(lang, now), StartedOn: LongDate(lang, v.Started.At), StartedName: name(v.Started.By)}
	if v.Closed != nil {
		d.ClosedOn, d.ClosedName = LongDate(lang, v.Closed.At), name(v.Closed.By)
	}
	for _, smp := range v.Sample {
		row := reportRow{Sampled: smp, Name: name(smp.Person), Date: ShortDate(lang, smp.Time), Kind: m["type."+smp.Type], Verdict: m["verdict.none"]}
		if row.Kind == "" {
			row.Kind = smp.Type
		}
		switch f := smp.Finding; {
		case f == nil:
			d.Pend++
		case f.Verdict == VerdictAnomaly:
			d.Anomalies++
			row.Verdict, row.Anomaly = m["verdict.anomaly"], true
			row.Outcome = m["investigation.open"]
			if inv := f.Investigation; inv != nil && inv.Closed != nil {
				row.Outcome, row.Resolved = inv.Outcome, true
				row.Closed = ShortDate(lang, inv.Closed.At) + " " + name(inv.Closed.By)
			}
		default:
			d.Justified++
			row.Verdict = m["verdict.justified"]
		}
		d.Rows = append(d.Rows, row)
		if row.Anomaly {
			d.Investigations = append(d.Investigations, row)
		}
	}
	if format == FormatCSV {
		return renderCSV(d)
	}
	var buf bytes.Buffer
	if err := reportHTML.Execute(&buf, d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renderCSV writes the sample with its findings, one row per sampled
// record, headed in the report's language; UTF-8 with a byte order mark
// so that spreadsheet programs read the Chinese text.
func renderCSV(d reportData) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	w := csv.NewWriter(&buf)
	m := d.M
	w.Write([]string{m["review"], m["period"], m["col.index"], m["col.date"], m["col.person"], m["col.type"], m["col.dataset"],
		m["col.purpose"], m["col.case"], m["col.verdict"], m["col.note"], m["col.by"], m["col.outcome"], m["col.closed"]})
	for _, r := range d.Rows {
		note, by := "", ""
		if r.Finding != nil {
			note, by = r.Finding.Note, r.Finding.By
		}
		outcome := ""
		if r.Anomaly {
			outcome = r.Outcome
		}
		w.Write([]string{d.R.ID, d.R.Period, strconv.FormatInt(r.Index, 10), r.Date, r.Name, r.Kind, r.Dataset,
			r.Purpose, r.Case, r.Verdict, note, by, outcome, r.Closed})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

//go:embed report.html.tmpl
var reportTemplate string

var reportHTML = template.Must(template.New("report").Parse(reportTemplate))
