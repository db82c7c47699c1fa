package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"custodian/service"
)

// TestDestroyCommandsHelp: the new commands answer --help with the flag
// names the issue gives.
func TestDestroyCommandsHelp(t *testing.T) {
	for args, want := range map[string]string{
		"destroy request --help":     "--reason",
		"destroy run --help":         "--passphrase-file",
		"destroy certificate --help": "--format",
		"vault rotate --help":        "--new-passphrase-file",
		"dataset expiring --help":    "--draft",
	} {
		out, err := runCLI(t, strings.Fields(args)...)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("%s: %v\n%s", args, err, out)
		}
	}
	if _, err := runCLI(t, "dataset", "expiring", "--file", "--config", "/nonexistent.yaml"); exitCode(err) != exitUsage {
		t.Errorf("--file without --draft: exit %d (%v)", exitCode(err), err)
	}
}

// TestDraftDestructions: one request per job and custodian, for datasets
// without an open request, as a command the custodian can run.
func TestDraftDestructions(t *testing.T) {
	ds := func(id, job, cust string) service.DatasetView {
		return service.DatasetView{ID: id, Job: job, Custodian: cust}
	}
	list := []service.Expiring{
		{Dataset: ds("ds-2", "extract", "olga"), Retention: "2y"},
		{Dataset: ds("ds-1", "extract", "olga"), Retention: "2y"},
		{Dataset: ds("ds-3", "changes", "olga"), Retention: "180d"},
		{Dataset: ds("ds-4", "extract", "olga"), Retention: "2y", Request: "R9"},
	}
	got := draftDestructions(list)
	if len(got) != 2 || got[1].Job != "extract" || strings.Join(got[1].Datasets, " ") != "ds-1 ds-2" {
		t.Fatalf("drafts %+v", got)
	}
	if want := "custodian destroy request ds-1 ds-2 --reason 'retention of job extract (2y after receipt) has passed'"; got[1].Command != want {
		t.Errorf("command %q, want %q", got[1].Command, want)
	}
}

// TestCertificateHTML: the printable certificate carries every field,
// labelled in Traditional Chinese with English, and prints on A4.
func TestCertificateHTML(t *testing.T) {
	c := service.Certificate{Request: "R7", Reason: "retention passed <2y>", Method: service.DestructionMethod, Tool: "custodian test",
		RequestedBy: "olga", ApprovedBy: "sue (supervisor); sam (supervisor)", ExecutedBy: "olga", ExecutedAt: time.Now().Format(time.RFC3339),
		Verification: "no key file remains", VerificationResult: "passed", Event: 42,
		Items: []service.CertificateItem{{Dataset: "ds-1", Name: "/outbox/HR_1.txt", Size: 1234, SHA256: strings.Repeat("ab", 32), Records: 50}}}
	var b bytes.Buffer
	if err := writeCertificateHTML(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"size: A4", "資料銷毀證明", "Certificate of Data Destruction", "核准人", "Approved by", "sue (supervisor); sam (supervisor)",
		"驗證方式", "Verification performed", "/outbox/HR_1.txt", strings.Repeat("ab", 32), "1234", "retention passed &lt;2y&gt;", "cryptographic erase"} {
		if !strings.Contains(out, want) {
			t.Errorf("the HTML certificate lacks %q", want)
		}
	}
}
