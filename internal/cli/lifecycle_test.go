package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"custodian/audit"
	"custodian/service"
)

// runSplit runs the CLI with stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// TestReadAndExportCLI: a read while sealed exits 1 with the rule; once an
// officer unsealed, `status` says so, `dataset read` writes only the data
// to stdout (messages on stderr) or to a new 0600 file, `vault verify`
// runs in the daemon as its finding, and an export is refused until a
// supervisor approves, then written as age ciphertext, once.
func TestReadAndExportCLI(t *testing.T) {
	cfgPath, pass := demoInstall(t)
	serveInProcess(t, cfgPath)
	demoLogin(t, cfgPath, "demo.officer")
	out, _, err := runSplit(t, "dataset", "list", "--config", cfgPath, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []service.DatasetView
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	var d service.DatasetView
	for _, x := range ds {
		if x.State == string(audit.StateVerified) && x.Purpose == "vaccination" {
			d = x
		}
	}
	if d.ID == "" {
		t.Fatalf("no verified vaccination dataset in %+v", ds)
	}
	file := filepath.Join(t.TempDir(), "data.txt")
	_, stderr, err := runSplit(t, "dataset", "read", d.ID, "--purpose", "vaccination", "--case", "C-1", "--out", file, "--config", cfgPath)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "custodian vault unseal") {
		t.Fatalf("a read while sealed: exit %d, %v %s", exitCode(err), err, stderr)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused read left a file")
	}
	if _, _, err := runSplit(t, "dataset", "read", d.ID, "--purpose", "vaccination", "--case", "", "--config", cfgPath); exitCode(err) != 2 {
		t.Fatalf("a read without a case: exit %d, %v", exitCode(err), err)
	}
	if out, _, err := runSplit(t, "vault", "unseal", "--passphrase-file", pass, "--config", cfgPath); err != nil || !strings.Contains(out, "UNSEALED by demo.officer") {
		t.Fatalf("unseal: %v %s", err, out)
	}
	if out, _, err := runSplit(t, "status", "--config", cfgPath); err != nil || !strings.Contains(out, "Vault:     UNSEALED by demo.officer") {
		t.Fatalf("status: %v %s", err, out)
	}
	stdout, stderr, err := runSplit(t, "dataset", "read", d.ID, "--purpose", "vaccination", "--case", "C-1", "--config", cfgPath)
	sum := sha256.Sum256([]byte(stdout))
	if err != nil || hex.EncodeToString(sum[:]) != d.SHA256 || !strings.Contains(stderr, "recorded on the ledger") {
		t.Fatalf("read to stdout: %v; stdout must be the data only (%d bytes), stderr %q", err, len(stdout), stderr)
	}
	if _, stderr, err = runSplit(t, "dataset", "read", d.ID, "--purpose", "vaccination", "--case", "C-1", "--out", file, "--config", cfgPath); err != nil {
		t.Fatalf("read to a file: %v %s", err, stderr)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != d.Size {
		t.Fatalf("--out: %v %v", fi.Mode(), err)
	}
	if out, _, err := runSplit(t, "vault", "verify", "--config", cfgPath); err != nil || !strings.Contains(out, "as the daemon's finding") {
		t.Fatalf("vault verify while unsealed: %v %s", err, out)
	}

	key, _ := age.GenerateX25519Identity()
	out, _, err = runSplit(t, "export", "request", d.ID, "--recipient", key.Recipient().String(), "--purpose", "vaccination", "--case", "C-2", "--reason", "copy for the health station", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	req := lastLine(out)
	enc := filepath.Join(t.TempDir(), "copy.age")
	if _, _, err := runSplit(t, "export", "run", req, "--out", enc, "--config", cfgPath); exitCode(err) != 1 || !strings.Contains(err.Error(), "needs") {
		t.Fatalf("an export before approval: %v", err)
	}
	demoLogin(t, cfgPath, "demo.supervisor")
	if out, _, err := runSplit(t, "approve", req, "--reason", "station's letter seen", "--config", cfgPath); err != nil {
		t.Fatalf("approve: %v %s", err, out)
	}
	demoLogin(t, cfgPath, "demo.officer")
	if out, _, err := runSplit(t, "export", "run", req, "--out", enc, "--config", cfgPath); err != nil || !strings.Contains(out, "age ciphertext") {
		t.Fatalf("export run: %v %s", err, out)
	}
	b, _ := os.ReadFile(enc)
	r, err := age.Decrypt(bytes.NewReader(b), key)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	plain.ReadFrom(r)
	if sum := sha256.Sum256(plain.Bytes()); hex.EncodeToString(sum[:]) != d.SHA256 {
		t.Fatal("the export does not decrypt to the received bytes")
	}
	if _, _, err := runSplit(t, "export", "run", req, "--out", enc+".2", "--config", cfgPath); exitCode(err) != 1 {
		t.Fatalf("a second export: %v", err)
	}
	if out, _, err := runSplit(t, "vault", "seal", "--config", cfgPath); err != nil || !strings.Contains(out, "sealed") {
		t.Fatalf("seal: %v %s", err, out)
	}
}

// TestHandoverPrintouts: the inventory prints as CSV and HTML with the
// three signatures, and the letter names the jobs, sources and the new
// officer, never record contents.
func TestHandoverPrintouts(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	h := service.Handover{Unit: "連江縣衛生局", InventorySHA256: strings.Repeat("ab", 32),
		From: service.Person{Username: "olga", FullName: "王小明"}, To: service.Person{Username: "bert", FullName: "陳大文"},
		RequestedBy: service.Person{Username: "olga", FullName: "王小明", At: at},
		ApprovedBy:  &service.Person{Username: "sue", FullName: "李主管", At: at.Add(time.Hour)},
		AcceptedBy:  &service.Person{Username: "bert", FullName: "陳大文", At: at.Add(2 * time.Hour)},
		Inventory:   []service.InventoryItem{{Dataset: "ds-1", Job: "registry-extract", Source: "moi", Name: "HR_1.txt", Size: 123, SHA256: strings.Repeat("cd", 32), Records: 3, State: "verified"}},
		Jobs:        []string{"registry-extract"}, Sources: []string{"moi"}}
	h.Request.ID = "R7"
	var csvOut, htmlOut, letter bytes.Buffer
	if err := inventoryCSV(&csvOut, h); err != nil {
		t.Fatal(err)
	}
	if err := inventoryHTML(&htmlOut, h); err != nil {
		t.Fatal(err)
	}
	if err := handoverLetter(&letter, h); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"csv": csvOut.String(), "html": htmlOut.String()} {
		for _, want := range []string{"ds-1", "HR_1.txt", strings.Repeat("cd", 32), h.InventorySHA256, "王小明", "李主管", "陳大文", "verified"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s inventory lacks %q", name, want)
			}
		}
	}
	for _, want := range []string{"registry-extract", "moi", "陳大文", "bert", "王小明", "五點第八款", "R7"} {
		if !strings.Contains(letter.String(), want) {
			t.Errorf("the letter lacks %q:\n%s", want, letter.String())
		}
	}
	if strings.Contains(letter.String(), "HR_1.txt") || strings.Contains(letter.String(), strings.Repeat("cd", 32)) {
		t.Error("the letter names files; it names jobs, sources and people only")
	}
	// Unsigned steps print as such.
	h.AcceptedBy = nil
	csvOut.Reset()
	inventoryCSV(&csvOut, h)
	if !strings.Contains(csvOut.String(), "(not yet)") {
		t.Error("an unsigned step must show as not yet signed")
	}
}
