package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custodian/accounts"
	"custodian/daemon"
	"custodian/service"
)

// The data lifecycle's commands: vault unseal and seal, dataset read and
// request, export request and run, handover request, accept, inventory
// and letter.

func newUnsealCmd(g *globals) *cobra.Command {
	var passFile string
	c := &cobra.Command{
		Use:   "unseal [--passphrase-file P]",
		Short: "Give the daemon the vault's private key (in memory only) for reads, exports and the scrub",
		Long: `unseal sends the vault passphrase to the daemon, which unlocks the vault's
private key and keeps it in memory only, until ` + "`custodian vault seal`" + `, vault.unseal_idle
without use (default 30m), or shutdown. Each unseal and seal is on the ledger.
Only an officer unseals.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			pass, err := readPassphrase(passFile, "Vault passphrase: ", false, g.stderr)
			if err != nil {
				return err
			}
			st, err := cl.Unseal(cmd.Context(), pass)
			clear(pass)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, vaultLine(&st))
			return nil
		},
	}
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the vault passphrase (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	return c
}

func newSealCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "seal",
		Short: "Have the daemon drop the vault's private key now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			st, err := cl.Seal(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, vaultLine(&st))
			return nil
		},
	}
}

// vaultLine describes the vault's seal for status.
func vaultLine(v *service.VaultState) string {
	switch {
	case v == nil:
		return "Vault:     -"
	case v.Sealed:
		return "Vault:     sealed (the daemon holds the public key only)"
	case v.Until != nil:
		return fmt.Sprintf("Vault:     UNSEALED by %s since %s, until %s unless used (idle %s)", v.UnsealedBy, localTime(v.UnsealedAt), localTime(v.Until), v.Idle)
	default:
		return fmt.Sprintf("Vault:     UNSEALED by %s since %s; %d use(s) in progress", v.UnsealedBy, localTime(v.UnsealedAt), v.InUse)
	}
}

// daemonScrub runs the scrub inside an unsealed daemon and prints it; ok
// is false when the daemon is sealed (the caller scrubs itself).
func daemonScrub(ctx context.Context, g *globals, cl *daemon.Client) (ok bool, err error) {
	st, err := cl.Status(ctx)
	if err != nil || st.Vault == nil || st.Vault.Sealed {
		return false, nil
	}
	res, err := cl.ScrubVault(ctx)
	if errors.Is(err, service.ErrConflict) {
		return false, nil // sealed meanwhile
	}
	if err != nil {
		return true, err
	}
	for i, o := range res.Objects {
		what := o.Dataset
		if !o.Current {
			what += " (an earlier receipt)"
		}
		if o.Error != "" {
			fmt.Fprintf(g.stdout, "FAIL  %s  %s\n", what, o.Error)
			continue
		}
		fmt.Fprintf(g.stdout, "ok    %s  %s  %d/%d  %s  %d records\n", what, o.ObjectID, i+1, len(res.Objects), humanBytes(o.Size), o.Records)
	}
	for _, id := range res.Unreferenced {
		fmt.Fprintf(g.stdout, "WARN  object %s is referenced by no dataset\n", id)
	}
	fmt.Fprintf(g.stdout, "Vault verify (in the daemon, unsealed): %d object(s) checked, %d failed, %d unreferenced\n", res.Checked, len(res.Failed), len(res.Unreferenced))
	fmt.Fprintf(g.stdout, "Recorded on the ledger (entry %d) as the daemon's finding\n", res.Index)
	if len(res.Failed) > 0 {
		return true, errFailed
	}
	return true, nil
}

// createOut makes --out: a new file, mode 0600.
func createOut(out string) (*os.File, error) {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, usageError{fmt.Errorf("--out: %s exists; choose a new file", out)}
	}
	return f, err
}

// download writes a read or an export to --out (a new 0600 file, removed
// if the stream fails) or to stdout; messages go to stderr.
func (g *globals) download(out string, get func(w io.Writer) (daemon.Download, error)) (daemon.Download, error) {
	if out == "" || out == "-" {
		return get(g.stdout)
	}
	f, err := createOut(out)
	if err != nil {
		return daemon.Download{}, err
	}
	d, err := get(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
	}
	return d, err
}

func addPurposeCase(c *cobra.Command, purpose, caseRef *string) {
	c.Flags().StringVar(purpose, "purpose", "", "the legal basis this use serves (clause 二): one of the purposes of the configuration")
	c.Flags().StringVar(caseRef, "case", "", "the case or file reference the use serves (1 to 128 characters; on the ledger)")
}

func newDatasetReadCmd(g *globals) *cobra.Command {
	var purpose, caseRef, out string
	c := &cobra.Command{
		Use:   "read ID --purpose P --case REF [--out FILE]",
		Short: "Stream a dataset's received bytes, for a purpose and a case (an access record on the ledger)",
		Long: `read streams the exact bytes that were received, as the vault holds them, to
stdout or to --out (a new file, mode 0600; removed if the read fails). Only the
data goes to the output; messages go to stderr.

Only an officer or contractor of the dataset's unit reads, and the purpose must
be the dataset's legal basis; a use outside it needs an approved emergency-use
request (a director approves), and quarantined or held data an approved
exceptional-read request (a supervisor approves): custodian dataset request.
The vault must be unsealed (custodian vault unseal). Every read is recorded:
who, when, purpose, case, bytes, the SHA-256 of what was delivered, outcome.
Exit status 1 if the read was refused or did not complete.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			d, err := g.download(out, func(w io.Writer) (daemon.Download, error) {
				return cl.ReadDataset(cmd.Context(), args[0], service.ReadRequest{Purpose: purpose, Case: caseRef}, w)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "Read %s: %d bytes, SHA-256 %s; recorded on the ledger (entry %d)\n", args[0], d.Bytes, d.SHA256, d.Index)
			return nil
		},
	}
	addPurposeCase(c, &purpose, &caseRef)
	c.Flags().StringVar(&out, "out", "", "write to this new file (mode 0600) instead of stdout")
	return c
}

// printFiled prints a filed request: a sentence, the next step, and its
// ID on the last line (or JSON with "id").
func printFiled(g *globals, q service.RequestView, asJSON bool, next string) error {
	if asJSON {
		return printJSON(g.stdout, struct {
			ID string `json:"id"`
			service.RequestView
		}{q.ID, q})
	}
	fmt.Fprintf(g.stdout, "Filed %s request about %s; it expires %s.\nNext: %s\n%s\n", q.Kind, q.Subject, q.Expires.Local().Format("2006-01-02 15:04"), next, q.ID)
	return nil
}

func newDatasetRequestCmd(g *globals) *cobra.Command {
	var kind, purpose, caseRef, reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "request ID --kind emergency-use|exceptional-read --purpose P --case REF --reason R",
		Short: "Ask to read a dataset outside its legal basis (emergency-use) or while quarantined or held (exceptional-read)",
		Long: `request files a request to read one dataset for one purpose and case:
emergency-use for a purpose other than the dataset's legal basis (a director
approves, clause 二), exceptional-read for quarantined or held data (a
supervisor approves). Once approved, your next complete ` + "`dataset read`" + ` with that
purpose and case uses it. The request's ID is printed on the last line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.FileDataRequest(cmd.Context(), service.DataRequest{Kind: accounts.Kind(kind), Dataset: args[0], Purpose: purpose, Case: caseRef, Reason: reason})
			if err != nil {
				return err
			}
			approver := "a supervisor"
			if q.Kind == accounts.KindEmergencyUse {
				approver = "the director"
			}
			return printFiled(g, q, asJSON, fmt.Sprintf("%s approves (custodian approve %s --reason R), then custodian dataset read %s --purpose %s --case %s", approver, q.ID, args[0], purpose, caseRef))
		},
	}
	c.Flags().StringVar(&kind, "kind", "", "emergency-use or exceptional-read")
	addPurposeCase(c, &purpose, &caseRef)
	c.Flags().StringVar(&reason, "reason", "", "why (at least 8 characters; on the ledger)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the request as JSON, with \"id\"")
	return c
}

func newExportCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "export",
		Short: "Approved copies of a dataset, encrypted to the recipient's age key (clause 三(二)(六))",
		Long: `A copy of registry data leaves only this way: request it (the recipient's age
public key, purpose, case, reason), a supervisor approves (custodian approve),
then the requester runs it once before the approval expires. The copy is the
dataset encrypted to the recipient in the standard age format; it is never
plaintext. The ledger records the recipient's key fingerprint and the copy's
SHA-256. A contractor's every copy takes this path.`,
	}
	var recipient, purpose, caseRef, reason string
	var asJSON bool
	req := &cobra.Command{
		Use:   "request ID --recipient AGE_RECIPIENT --purpose P --case REF --reason R",
		Short: "File an export request (a supervisor approves)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.FileExport(cmd.Context(), service.ExportRequest{Dataset: args[0], Recipient: recipient, Purpose: purpose, Case: caseRef, Reason: reason})
			if err != nil {
				return err
			}
			return printFiled(g, q, asJSON, fmt.Sprintf("a supervisor approves (custodian approve %s --reason R), then you run custodian export run %s --out FILE", q.ID, q.ID))
		},
	}
	req.Flags().StringVar(&recipient, "recipient", "", "the recipient's age public key (age1…)")
	addPurposeCase(req, &purpose, &caseRef)
	req.Flags().StringVar(&reason, "reason", "", "why (at least 8 characters; on the ledger)")
	req.Flags().BoolVar(&asJSON, "json", false, "print the request as JSON, with \"id\"")
	var out string
	run := &cobra.Command{
		Use:   "run REQUEST --out FILE",
		Short: "Make the approved copy (age ciphertext), once",
		Long: `run streams the dataset, encrypted to the request's recipient in the age
format, to --out (a new file, mode 0600; removed if the export fails). Only the
requester runs it, once, before the approval expires; the vault must be
unsealed. The recipient decrypts it with the stock age tool:
  age --decrypt --identity KEY_FILE FILE > data`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out FILE is required: the encrypted copy is written to a new file")}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			d, err := g.download(out, func(w io.Writer) (daemon.Download, error) { return cl.RunExport(cmd.Context(), args[0], w) })
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Exported %s to %s: %d bytes of age ciphertext, SHA-256 %s; recorded on the ledger (entry %d)\n", args[0], out, d.Bytes, d.SHA256, d.Index)
			return nil
		},
	}
	run.Flags().StringVar(&out, "out", "", "the new file to write the encrypted copy to (mode 0600)")
	c.AddCommand(req, run)
	return c
}

func newHandoverCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "handover",
		Short: "Hand one person's custody over to another (列冊移交, clause 四(二))",
		Long: `A hand-over moves every dataset in one person's custody to another officer:
request it (the inventory of everything in the giver's custody is built and
kept with the request, its SHA-256 on the ledger), a supervisor approves, the
receiver accepts, and custody moves, dataset by dataset, on the ledger. The
inventory prints as HTML or CSV with the signatures, and a draft letter tells
the providing agency that the contact person changed (clause 五(八)).`,
	}
	var from, to, reason string
	var asJSON bool
	req := &cobra.Command{
		Use:   "request --from A --to B --reason R",
		Short: "Build the inventory of A's custody and file a hand-over to B",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.FileHandover(cmd.Context(), service.HandoverRequest{From: from, To: to, Reason: reason})
			if err != nil {
				return err
			}
			return printFiled(g, q, asJSON, fmt.Sprintf("%s dataset(s), inventory SHA-256 %s; a supervisor approves (custodian approve %s --reason R), then %s runs custodian handover accept %s",
				q.Details["datasets"], q.Details["inventory_sha256"], q.ID, to, q.ID))
		},
	}
	req.Flags().StringVar(&from, "from", "", "the person handing over (their whole custody)")
	req.Flags().StringVar(&to, "to", "", "the officer taking custody")
	req.Flags().StringVar(&reason, "reason", "", "why (at least 8 characters; on the ledger)")
	req.Flags().BoolVar(&asJSON, "json", false, "print the request as JSON, with \"id\"")
	var acceptJSON bool
	accept := &cobra.Command{
		Use:   "accept REQUEST [--json]",
		Short: "Accept an approved hand-over to you: custody moves",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			h, err := cl.AcceptHandover(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if acceptJSON {
				return printJSON(g.stdout, h)
			}
			fmt.Fprintf(g.stdout, "Custody of %d dataset(s) passed from %s to %s (inventory SHA-256 %s).\n", len(h.Inventory), h.From.Username, h.To.Username, h.InventorySHA256)
			if len(h.ConfiguredJobs) > 0 {
				fmt.Fprintf(g.stdout, "Next: set jobs[].officer to %s for %s in the configuration (new files go to the job's officer), then send the letter (custodian handover letter %s)\n",
					h.To.Username, strings.Join(h.ConfiguredJobs, ", "), args[0])
			}
			return nil
		},
	}
	accept.Flags().BoolVar(&acceptJSON, "json", false, "print JSON")
	var format, out string
	inv := &cobra.Command{
		Use:   "inventory REQUEST --format html|csv [--out FILE]",
		Short: "Print a hand-over's inventory with its signatures (names, times)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "html" && format != "csv" {
				return usageError{fmt.Errorf("--format: %q; use html or csv", format)}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			h, err := cl.Handover(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if format == "csv" {
				err = inventoryCSV(&b, h)
			} else {
				err = inventoryHTML(&b, h)
			}
			if err != nil {
				return err
			}
			if out == "" {
				out = "-"
			}
			return g.writeOut(out, b.Bytes(), 0o600)
		},
	}
	inv.Flags().StringVar(&format, "format", "html", "html or csv")
	inv.Flags().StringVar(&out, "out", "", "write to this new file instead of stdout")
	letter := &cobra.Command{
		Use:   "letter REQUEST",
		Short: "Draft the letter telling the providing agency that the contact person changed (五(八))",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			h, err := cl.Handover(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return handoverLetter(g.stdout, h)
		},
	}
	c.AddCommand(req, accept, inv, letter)
	return c
}

// signature is one signed step of a hand-over, for printing.
type signature struct {
	Role, Name, Username, At string
}

func signatures(h service.Handover) []signature {
	sig := func(role string, p *service.Person) signature {
		if p == nil {
			return signature{Role: role, Name: "(not yet)", At: "-"}
		}
		name := p.FullName
		if name == "" {
			name = p.Username
		}
		return signature{Role: role, Name: name, Username: p.Username, At: p.At.Local().Format("2006-01-02 15:04:05 MST")}
	}
	req := h.RequestedBy
	return []signature{sig("移交人 handed over by (requested)", &req), sig("監交人 approved by", h.ApprovedBy), sig("接收人 accepted by", h.AcceptedBy)}
}

func inventoryCSV(w io.Writer, h service.Handover) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"hand-over", h.Request.ID, "unit", h.Unit, "from", h.From.Username, "to", h.To.Username, "inventory_sha256", h.InventorySHA256})
	cw.Write([]string{"dataset", "job", "source", "name", "size", "sha256", "records", "state"})
	for _, it := range h.Inventory {
		cw.Write([]string{it.Dataset, it.Job, it.Source, it.Name, strconv.FormatInt(it.Size, 10), it.SHA256, strconv.FormatInt(it.Records, 10), it.State})
	}
	cw.Write([]string{"signature", "name", "username", "time"})
	for _, s := range signatures(h) {
		cw.Write([]string{s.Role, s.Name, s.Username, s.At})
	}
	cw.Flush()
	return cw.Error()
}

var inventoryTmpl = template.Must(template.New("inv").Parse(`<!DOCTYPE html>
<html lang="zh-Hant"><head><meta charset="utf-8"><title>移交清冊 {{.H.Request.ID}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #444;padding:4px 8px;font-size:90%}code{font-size:85%}</style></head>
<body>
<h1>移交清冊 Hand-over inventory {{.H.Request.ID}}</h1>
<p>{{.H.Unit}}: {{.H.From.FullName}} ({{.H.From.Username}}) → {{.H.To.FullName}} ({{.H.To.Username}}); reason: {{.H.Request.Reason}}</p>
<p>Inventory SHA-256: <code>{{.H.InventorySHA256}}</code> (on the custody ledger with the request); state of the request: {{.H.Request.State}}</p>
<table><tr><th>#</th><th>Dataset</th><th>Job</th><th>Source</th><th>Name</th><th>Size (bytes)</th><th>SHA-256</th><th>Records</th><th>State</th></tr>
{{range $i, $it := .H.Inventory}}<tr><td>{{$i}}</td><td>{{$it.Dataset}}</td><td>{{$it.Job}}</td><td>{{$it.Source}}</td><td>{{$it.Name}}</td><td>{{$it.Size}}</td><td><code>{{$it.SHA256}}</code></td><td>{{$it.Records}}</td><td>{{$it.State}}</td></tr>
{{end}}</table>
<h2>簽章 Signatures</h2>
<table><tr><th>Role</th><th>Name</th><th>Username</th><th>Time</th></tr>
{{range .Sigs}}<tr><td>{{.Role}}</td><td>{{.Name}}</td><td>{{.Username}}</td><td>{{.At}}</td></tr>
{{end}}</table>
</body></html>
`))

func inventoryHTML(w io.Writer, h service.Handover) error {
	return inventoryTmpl.Execute(w, struct {
		H    service.Handover
		Sigs []signature
	}{h, signatures(h)})
}

// handoverLetter drafts the notice to the providing agency (五(八)):
// which jobs and sources, who the new contact is; no record contents.
func handoverLetter(w io.Writer, h service.Handover) error {
	to := h.To.FullName
	if to == "" {
		to = h.To.Username
	}
	from := h.From.FullName
	if from == "" {
		from = h.From.Username
	}
	date := time.Now()
	if h.AcceptedBy != nil {
		date = h.AcceptedBy.At
	}
	unit := h.Unit
	if unit == "" {
		unit = "本機關"
	}
	_, err := fmt.Fprintf(w, `（稿）

受文者：戶籍資料提供機關
發文者：%s
日期：%s
主旨：本機關戶籍資料傳輸聯絡人異動，請查照。

說明：
一、依本機關使用戶役政資料連結作業要點第五點第八款辦理。
二、本機關下列作業之資料保管及聯絡人，自%s起由%s改為%s：
    作業（job）：%s
    資料來源（source）：%s
三、新聯絡人之帳號為 %s；其後資料傳輸事宜請逕洽新聯絡人。
四、本次移交業經主管核准並列冊移交（申請編號 %s，清冊雜湊 SHA-256 %s）。

%s
`, unit, date.Local().Format("2006-01-02"), date.Local().Format("2006年01月02日"), from, to,
		strings.Join(h.Jobs, "、"), strings.Join(h.Sources, "、"), h.To.Username, h.Request.ID, h.InventorySHA256, unit)
	return err
}
