package cli

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"custodian/service"
)

// The destruction flow (clause 四(三)), retention and key rotation.

func newDestroyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "destroy",
		Short: "Destroy datasets after approval: request, run, certificate (clause 四(三))",
		Long: `Destruction is a cryptographic erase (NIST SP 800-88): every vault object of the
datasets (current, earlier receipts kept by re-pulls, set-aside copies) has its
own key file, which is overwritten, fsynced and unlinked, and so is the
ciphertext. Any copy of the ciphertext is then undecryptable.

  1. custodian destroy request ID... --reason R     (the data's custodian)
  2. custodian approve REQUEST --reason R           (two supervisors, never the requester)
  3. custodian destroy run REQUEST                  (the requester, with the vault passphrase)
  4. custodian destroy certificate REQUEST [--format html|json]

The run also rotates the vault's master key (--rotate, on by default), so that
backups taken before depend on a key the installation no longer holds; see
docs/destruction.md for what that does and does not cover.`,
	}
	c.AddCommand(newDestroyRequestCmd(g), newDestroyRunCmd(g), newDestroyCertificateCmd(g))
	return c
}

func newDestroyRequestCmd(g *globals) *cobra.Command {
	var reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "request ID... --reason R [--json]",
		Short: "File a destruction request for datasets; two supervisors approve it",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.FileDestruction(cmd.Context(), service.DestructionRequest{Datasets: ids, Reason: reason})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, struct {
					ID string `json:"id"`
					service.RequestView
				}{q.ID, q})
			}
			fmt.Fprintf(g.stdout, "Filed destruction request for %d dataset(s): %s; it expires %s.\nNext: two supervisors approve (custodian approve %s --reason R), then you run custodian destroy run %s\n%s\n",
				len(ids), strings.Join(ids, " "), q.Expires.Local().Format("2006-01-02 15:04"), q.ID, q.ID, q.ID)
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (at least 8 characters; on the ledger and the certificate)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the request as JSON, with \"id\"")
	return c
}

func newDestroyRunCmd(g *globals) *cobra.Command {
	var passFile, newPassFile string
	var rotate, asJSON bool
	c := &cobra.Command{
		Use:   "run REQUEST [--passphrase-file P] [--rotate=false] [--new-passphrase-file N] [--json]",
		Short: "Carry out an approved destruction request (its requester): erase, verify, certify",
		Long: `run erases every vault object of the request's datasets, verifies that nothing of
them is left in the vault and that their ciphertext no longer opens with the
master key, rotates the master key (unless --rotate=false), and records the
certificate on the ledger. The rotation needs the vault passphrase
(--passphrase-file, or CUSTODIAN_PASSPHRASE_FILE, or a prompt); with
--rotate=false the erase uses the key an officer unsealed into the daemon
(custodian vault unseal), unless a passphrase is given. With
--new-passphrase-file the rotated
master key is protected by a new passphrase, so that backups taken before need
the old one too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if newPassFile != "" && !rotate {
				return usageError{errors.New("--new-passphrase-file goes with --rotate")}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			// Without a rotation the erase can use the key an officer
			// unsealed into the daemon: no passphrase is asked for then.
			var pass, newPass []byte
			if rotate || passFile != "" || os.Getenv("CUSTODIAN_PASSPHRASE_FILE") != "" {
				if pass, newPass, err = vaultPassphrases(g, passFile, newPassFile); err != nil {
					return err
				}
				defer clear(pass)
				defer clear(newPass)
			}
			cert, err := cl.RunDestruction(cmd.Context(), args[0], service.DestroyOptions{Passphrase: pass, Rotate: rotate, NewPassphrase: newPass})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, struct {
					ID string `json:"id"`
					service.Certificate
				}{cert.Request, cert})
			}
			fmt.Fprintf(g.stdout, "Destroyed %d dataset(s) (%d key file(s), %d ciphertext(s) erased); verification %s.\n", len(cert.Items), cert.KeyFilesErased, cert.CiphertextsErased, cert.VerificationResult)
			if cert.MasterKeyRotated {
				fmt.Fprintln(g.stdout, "The vault's master key was rotated: take a fresh backup now (custodian backup), and see docs/destruction.md for older backups.")
			}
			fmt.Fprintf(g.stdout, "Certificate on the ledger (entry %d): custodian destroy certificate %s\n%s\n", cert.Event, cert.Request, cert.Request)
			return nil
		},
	}
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the vault passphrase (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.Flags().StringVar(&newPassFile, "new-passphrase-file", "", "file holding a new passphrase for the rotated master key (default: keep the passphrase)")
	c.Flags().BoolVar(&rotate, "rotate", true, "rotate the vault's master key after the erase")
	c.Flags().BoolVar(&asJSON, "json", false, "print the certificate as JSON, with \"id\"")
	return c
}

func newDestroyCertificateCmd(g *globals) *cobra.Command {
	var format, verifierKey string
	c := &cobra.Command{
		Use:   "certificate REQUEST [--format html|json|text]",
		Short: "Print a destruction certificate (HTML prints on A4), and check it against the ledger",
		Long: `certificate prints the destruction certificate of an executed request, as its
destruction.certified ledger event records it, after checking it: the event's
inclusion proof leads to the ledger's signed checkpoint (under --verifier-key, or
the ledger's own key), and every field is the event's. --format html prints a
bilingual page (Traditional Chinese and English) for A4; json gives the
certificate with its proof, which anyone can check offline.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			cert, err := cl.DestructionCertificate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := service.VerifyCertificate(cert, verifierKey); err != nil {
				return fmt.Errorf("the certificate does not verify: %w", err)
			}
			switch format {
			case "json":
				return printJSON(g.stdout, cert)
			case "html":
				return writeCertificateHTML(g.stdout, cert)
			case "text", "":
				return writeCertificateText(g.stdout, cert)
			}
			return usageError{fmt.Errorf("--format: %q; use html, json or text", format)}
		},
	}
	c.Flags().StringVar(&format, "format", "text", "html (print on A4), json (with its proof) or text")
	c.Flags().StringVar(&verifierKey, "verifier-key", "", "the ledger's verifier key to check the proof against (default: the key in the proof)")
	return c
}

// certificateRows are the certificate's fields, labelled in Traditional
// Chinese and English.
func certificateRows(c service.Certificate) [][3]string {
	rows := [][3]string{
		{"申請單號", "Request", c.Request},
		{"銷毀事由", "Reason", c.Reason},
		{"銷毀方法", "Method", c.Method},
		{"工具及版本", "Tool and version", c.Tool},
		{"申請人", "Requested by", c.RequestedBy + "  " + c.RequestedAt},
		{"核准人", "Approved by", c.ApprovedBy},
		{"執行人", "Executed by", c.ExecutedBy + "  " + c.ExecutedAt},
		{"驗證方式", "Verification performed", c.Verification},
		{"驗證結果", "Verification result", c.VerificationResult},
		{"主金鑰輪替", "Master key rotated", fmt.Sprint(c.MasterKeyRotated)},
		{"清除數量", "Erased", fmt.Sprintf("%d key file(s), %d ciphertext(s)", c.KeyFilesErased, c.CiphertextsErased)},
		{"帳本紀錄", "Ledger entry", fmt.Sprintf("destruction.certified #%d; dataset.destroyed %v", c.Event, c.DestroyedEvents)},
	}
	return rows
}

func writeCertificateText(w io.Writer, c service.Certificate) error {
	fmt.Fprintln(w, "資料銷毀證明 Certificate of Data Destruction")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range certificateRows(c) {
		fmt.Fprintf(tw, "%s %s\t%s\n", r[0], r[1], r[2])
	}
	tw.Flush()
	fmt.Fprintln(w, "\n銷毀標的 What was destroyed:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tNAME\tSIZE\tRECORDS\tSTATE\tSHA-256")
	for _, it := range c.Items {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", it.Dataset, it.Name, it.Size, it.Records, it.FromState, it.SHA256)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nVerified against the ledger's signed checkpoint:\n%s", c.Proof.Checkpoint)
	return nil
}

var certificateHTML = template.Must(template.New("cert").Parse(`<!DOCTYPE html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<title>資料銷毀證明 Certificate of Data Destruction — {{.C.Request}}</title>
<style>
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "Noto Sans TC", "Microsoft JhengHei", "PingFang TC", sans-serif; font-size: 10.5pt; color: #000; }
h1 { font-size: 16pt; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; page-break-inside: auto; }
tr { page-break-inside: avoid; }
th, td { border: 0.3mm solid #444; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { width: 38mm; background: #eee; font-weight: normal; }
th span, td span { display: block; font-size: 8.5pt; color: #333; }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; word-break: break-all; }
pre { white-space: pre-wrap; font-size: 8pt; }
.sign td { height: 18mm; }
</style>
</head>
<body>
<h1>資料銷毀證明<br><small>Certificate of Data Destruction (NIST SP 800-88 Rev. 1)</small></h1>
<table>
{{range .Rows}}<tr><th>{{index . 0}}<span>{{index . 1}}</span></th><td>{{index . 2}}</td></tr>
{{end}}</table>
<h2>銷毀標的 What was destroyed</h2>
<table>
<tr><th>資料集 Dataset</th><th>名稱 Name</th><th>大小 Size (bytes)</th><th>筆數 Records</th><th>SHA-256</th></tr>
{{range .C.Items}}<tr><td class="mono">{{.Dataset}}</td><td>{{.Name}}</td><td>{{.Size}}</td><td>{{.Records}}</td><td class="mono">{{.SHA256}}</td></tr>
{{end}}</table>
<h2>帳本證明 Ledger proof</h2>
<p>本證明之內容與保管帳本第 {{.C.Event}} 筆紀錄（destruction.certified）相符，該紀錄包含於下列簽章檢查點。<br>
This certificate is ledger entry {{.C.Event}} (destruction.certified), included in the signed checkpoint below.</p>
<pre class="mono">{{.C.Proof.Checkpoint}}</pre>
<h2>簽署 Signatures</h2>
<table class="sign">
<tr><th>執行人 Executed by</th><td>{{.C.ExecutedBy}}</td></tr>
<tr><th>核准人 Approved by</th><td>{{.C.ApprovedBy}}</td></tr>
</table>
<p><small>Printed {{.Printed}}</small></p>
</body>
</html>
`))

func writeCertificateHTML(w io.Writer, c service.Certificate) error {
	return certificateHTML.Execute(w, struct {
		C       service.Certificate
		Rows    [][3]string
		Printed string
	}{c, certificateRows(c), time.Now().Format(time.RFC3339)})
}

func newVaultRotateCmd(g *globals) *cobra.Command {
	var passFile, newPassFile, reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "rotate [--passphrase-file P] [--new-passphrase-file N] [--reason R] [--json]",
		Short: "Replace the vault's master key: re-wrap every object key, destroy the old key",
		Long: `rotate makes a new master key, re-wraps every object's own key to it (payloads
are not re-encrypted; objects from before per-object keys are given one, once),
writes the new key files atomically, overwrites the old master key file, and
records vault.rotated on the ledger, which the daemon then trusts. With
--new-passphrase-file the new key is under a new passphrase. Take a fresh backup
afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			pass, newPass, err := vaultPassphrases(g, passFile, newPassFile)
			if err != nil {
				return err
			}
			defer clear(pass)
			defer clear(newPass)
			out, err := cl.RotateVault(cmd.Context(), service.RotateRequest{Passphrase: pass, NewPassphrase: newPass, Reason: reason})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, struct {
					ID string `json:"id"`
					service.Rotation
				}{out.NewRecipient, out})
			}
			fmt.Fprintf(g.stdout, "Rotated the vault's master key: %d object key(s) re-wrapped, %d legacy object(s) migrated; recorded as ledger entry %d.\nOld key %s is destroyed in this installation; take a fresh backup (custodian backup).\n%s\n",
				out.Rewrapped, out.Migrated, out.Event, out.OldRecipient, out.NewRecipient)
			return nil
		},
	}
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the vault passphrase (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.Flags().StringVar(&newPassFile, "new-passphrase-file", "", "file holding a new passphrase for the new master key (default: keep the passphrase)")
	c.Flags().StringVar(&reason, "reason", "", "why (on the ledger)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the outcome as JSON, with \"id\" (the new public key)")
	return c
}

func newExpiringCmd(g *globals) *cobra.Command {
	var asJSON, draft, file bool
	c := &cobra.Command{
		Use:   "expiring [--json] [--draft [--file]]",
		Short: "List datasets past their job's retention; draft (or file) their destruction requests",
		Long: `expiring lists the datasets still stored past their job's retention (received_at
plus the job's retention:), with the days overdue and any open destruction
request. --draft prints one destruction request command per job for the data's
custodian to run; --file files them now, as you.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file && !draft {
				return usageError{errors.New("--file goes with --draft")}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			list, err := cl.ExpiringDatasets(cmd.Context())
			if err != nil {
				return err
			}
			drafts := draftDestructions(list)
			switch {
			case draft && file:
				var filed []service.RequestView
				for _, d := range drafts {
					q, err := cl.FileDestruction(cmd.Context(), service.DestructionRequest{Datasets: d.Datasets, Reason: d.Reason})
					if err != nil {
						return err
					}
					filed = append(filed, q)
				}
				if asJSON {
					out := make([]map[string]any, len(filed))
					for i, q := range filed {
						out[i] = map[string]any{"id": q.ID, "datasets": q.Details["datasets"]}
					}
					return printJSON(g.stdout, out)
				}
				if len(filed) == 0 {
					fmt.Fprintln(g.stderr, "Nothing to file: no dataset is past its retention without an open destruction request.")
				}
				for _, q := range filed {
					fmt.Fprintf(g.stdout, "Filed %s for %s\n", q.ID, q.Details["datasets"])
				}
				for _, q := range filed {
					fmt.Fprintln(g.stdout, q.ID)
				}
				return nil
			case draft:
				if asJSON {
					return printJSON(g.stdout, drafts)
				}
				for _, d := range drafts {
					fmt.Fprintf(g.stdout, "# %s (custodian %s): %d dataset(s)\n%s\n", d.Job, d.Custodian, len(d.Datasets), d.Command)
				}
				return nil
			}
			if asJSON {
				return printJSON(g.stdout, list)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tJOB\tRETENTION\tRECEIVED\tDUE\tOVERDUE\tSTATE\tCUSTODIAN\tREQUEST")
			for _, e := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%dd\t%s\t%s\t%s\n", e.Dataset.ID, e.Dataset.Job, e.Retention,
					e.Dataset.ReceivedAt.Local().Format("2006-01-02"), e.Due.Local().Format("2006-01-02"), e.DaysOverdue, e.Dataset.State, e.Dataset.Custodian, e.Request)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	c.Flags().BoolVar(&draft, "draft", false, "print the destruction request commands for the datasets without an open request")
	c.Flags().BoolVar(&file, "file", false, "with --draft: file the requests now, as you")
	return c
}

// DestructionDraft is a destruction request drafted for expired datasets.
type DestructionDraft struct {
	Job       string   `json:"job"`
	Custodian string   `json:"custodian"`
	Datasets  []string `json:"datasets"`
	Reason    string   `json:"reason"`
	Command   string   `json:"command"`
}

// draftDestructions groups the expired datasets without an open request
// by job and custodian, one request each.
func draftDestructions(list []service.Expiring) []DestructionDraft {
	type key struct{ job, custodian, retention string }
	groups := map[key][]string{}
	for _, e := range list {
		if e.Request != "" {
			continue
		}
		k := key{e.Dataset.Job, e.Dataset.Custodian, e.Retention}
		groups[k] = append(groups[k], e.Dataset.ID)
	}
	var out []DestructionDraft
	for k, ids := range groups {
		sort.Strings(ids)
		reason := fmt.Sprintf("retention of job %s (%s after receipt) has passed", k.job, k.retention)
		out = append(out, DestructionDraft{Job: k.job, Custodian: k.custodian, Datasets: ids, Reason: reason,
			Command: "custodian destroy request " + strings.Join(ids, " ") + " --reason " + shellQuote(reason)})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Job < out[j].Job || (out[i].Job == out[j].Job && out[i].Custodian < out[j].Custodian)
	})
	return out
}

// vaultPassphrases reads the vault passphrase and, with newFile, a new one
// (confirmed at a prompt).
func vaultPassphrases(g *globals, file, newFile string) (pass, newPass []byte, err error) {
	if pass, err = readPassphrase(file, "Vault passphrase: ", false, g.stderr); err != nil {
		return nil, nil, err
	}
	if newFile != "" {
		if newPass, err = readPassphrase(newFile, "New vault passphrase: ", true, g.stderr); err != nil {
			clear(pass)
			return nil, nil, err
		}
	}
	return pass, newPass, nil
}
