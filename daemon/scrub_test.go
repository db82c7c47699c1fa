package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/transfer"
)

// postRaw sends body to path as any local account could, bypassing the
// CLI, and returns the daemon's error if it refused.
func postRaw(t *testing.T, cl *Client, path, body string) error {
	t.Helper()
	resp, err := cl.do(context.Background(), http.MethodPost, path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func eventsOfType(t *testing.T, cl *Client, typ audit.EventType) []service.EventView {
	t.Helper()
	evs, err := cl.Log(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []service.EventView
	for _, e := range evs {
		if e.Type == string(typ) {
			out = append(out, e)
		}
	}
	return out
}

// TestForgedScrubReportRefused: a scrub report that does not match the
// ledger (the forged request) is not recorded as a scrub; its
// refusal is recorded, naming the sender and the rule.
func TestForgedScrubReportRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 20, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2, TrailerDelta: 1}})
	cl, _, _ := f.serve(t)
	if _, err := cl.Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"checked":100000,"failed":{}}`,
		`{"checked":2,"failed":{"ds-forged":"made up"}}`,
	} {
		err := postRaw(t, cl, "/v1/vault/verified", body)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("%s: a report that does not match the ledger must be refused, got %v", body, err)
		}
	}
	for _, typ := range []audit.EventType{"vault.verified", "vault.scrub_reported", "vault.object_failed"} {
		if evs := eventsOfType(t, f.as(t, "auditor.a"), typ); len(evs) != 0 {
			t.Fatalf("a refused report was recorded as %s: %+v", typ, evs)
		}
	}
	refused := eventsOfType(t, f.as(t, "auditor.a"), "vault.scrub_report_refused")
	if len(refused) != 2 {
		t.Fatalf("want both refusals on the ledger, got %+v", refused)
	}
	for _, e := range refused {
		if e.Actor != "officer.a" || e.Details["reported_by"] != "officer.a" || e.Details["reason"] == "" {
			t.Fatalf("a refusal names the sender and the reason: %+v", e)
		}
	}
}

// TestScrubReportMustMatchLedger: the scrub plan covers every object the
// ledger refers to (earlier copies of re-pulled files too); a report that
// follows it is recorded as a report by its sender with the count, the
// failed object IDs and the digest; one whose count, failed IDs or digest
// differ is refused and the refusal recorded; a plan taken before more
// files arrived is still honoured.
func TestScrubReportMustMatchLedger(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 20, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2, TrailerDelta: 1}})
	cl, _, _ := f.serve(t)
	ctx := context.Background()
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	ds, err := cl.Datasets(ctx)
	if err != nil || len(ds) != 2 {
		t.Fatalf("datasets: %v %v", ds, err)
	}
	var quarantined service.DatasetView
	for _, d := range ds {
		if d.State == string(audit.StateQuarantined) {
			quarantined = d
		}
	}
	if _, err := cl.Repull(ctx, quarantined.ID, "the provider says it is the same file"); err != nil {
		t.Fatal(err)
	}
	plan, err := cl.ScrubPlan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 3 {
		t.Fatalf("two datasets, one re-pulled: want 3 objects, got %+v", plan.Items)
	}
	for _, it := range plan.Items {
		if it.Dataset.ObjectID != it.ObjectID || it.Dataset.SHA256 == "" {
			t.Fatalf("every object comes with the state that describes it: %+v", it)
		}
	}
	digest := transfer.ScrubDigest(plan.Transfer().Items)
	failedObj := plan.Items[1].ObjectID
	good := service.ScrubReport{LedgerSize: plan.LedgerSize, Checked: 3, Failed: map[string]string{failedObj: "SHA-256 mismatch"}, CheckedDigest: digest}

	// More files arrive while the scrub runs: the report is compared with
	// the ledger as it was when the plan was taken.
	f.put(t, synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 3, Seed: 3}})
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}

	refusals := []struct {
		name string
		edit func(*service.ScrubReport)
		want string
	}{
		{"count too high", func(r *service.ScrubReport) { r.Checked = 100000 }, "says 100000 object(s) were checked"},
		{"count too low", func(r *service.ScrubReport) { r.Checked = 2 }, "refer to 3 vault object(s)"},
		{"forged failure", func(r *service.ScrubReport) { r.Failed = map[string]string{"obj-forged": "x"} }, `failed object "obj-forged" is not a vault object`},
		{"wrong digest", func(r *service.ScrubReport) { r.CheckedDigest = strings.Repeat("0", 64) }, "checked_digest \"000"},
		{"no digest", func(r *service.ScrubReport) { r.CheckedDigest = "" }, "checked_digest is required"},
		{"future ledger size", func(r *service.ScrubReport) { r.LedgerSize = 1 << 40 }, "is not a size the ledger has had"},
	}
	for _, tc := range refusals {
		rep := good
		tc.edit(&rep)
		if _, err := cl.RecordScrub(ctx, rep); err == nil || !strings.Contains(err.Error(), "scrub report refused: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want a refusal naming %q, got %v", tc.name, tc.want, err)
		}
	}
	if n := len(eventsOfType(t, f.as(t, "auditor.a"), audit.EvVaultScrubReportRefused)); n != len(refusals) {
		t.Fatalf("want %d refusals on the ledger, got %d", len(refusals), n)
	}
	if n := len(eventsOfType(t, f.as(t, "auditor.a"), audit.EvVaultScrubReported)); n != 0 {
		t.Fatalf("a refused report was recorded: %d", n)
	}

	idx, err := cl.RecordScrub(ctx, good)
	if err != nil {
		t.Fatalf("a report that follows the plan: %v", err)
	}
	got := eventsOfType(t, f.as(t, "auditor.a"), audit.EvVaultScrubReported)
	if len(got) != 1 || got[0].Index != idx {
		t.Fatalf("want one scrub report at %d, got %+v", idx, got)
	}
	want := map[string]string{"reported_by": "officer.a", "objects_checked": "3", "failed": "1", "failed_objects": failedObj, "checked_digest": digest}
	for k, v := range want {
		if got[0].Details[k] != v {
			t.Errorf("details[%s] = %q, want %q", k, got[0].Details[k], v)
		}
	}
	if got[0].Actor != "officer.a" {
		t.Errorf("actor %q", got[0].Actor)
	}
	of := eventsOfType(t, f.as(t, "auditor.a"), audit.EvVaultObjectFailed)
	if len(of) != 1 || of[0].Details["object_id"] != failedObj || of[0].DatasetID != plan.Items[1].Dataset.ID || of[0].Details["reported_by"] != "officer.a" {
		t.Fatalf("the failed object is recorded on its dataset's timeline: %+v", of)
	}
	if rep, err := f.as(t, "auditor.a").Verify(ctx, audit.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("ledger: %v %v", rep, err)
	}
}
