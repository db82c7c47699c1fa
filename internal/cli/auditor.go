package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"custodian/audit"
	"custodian/daemon"
	"custodian/proof"
	"custodian/service"
)

// The auditor's workbench: proofs an auditor keeps and checks offline,
// kept checkpoints, cosignatures, the filtered log and a dataset's custody
// chain (docs/auditing.md).

// writeOut writes a file the command creates: "-" is stdout; an existing
// file is never replaced.
func (g *globals) writeOut(out string, data []byte, mode os.FileMode) error {
	if out == "-" {
		_, err := g.stdout.Write(data)
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return usageError{fmt.Errorf("--out: %s exists; choose a new file", out)}
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
	}
	return err
}

// openLedgerFile opens an exported ledger read-only.
func openLedgerFile(path string) (*audit.Ledger, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, usageError{fmt.Errorf("--ledger: %w", err)}
	}
	return audit.Open(path, audit.Options{ReadOnly: true, Timeout: 5 * time.Second})
}

func readArgFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return b, nil
}

// proofCmdError maps the errors of building a proof from a ledger file.
func proofCmdError(err error) error {
	switch {
	case errors.Is(err, proof.ErrArgument):
		return fmt.Errorf("%w: %v", service.ErrNotFound, err)
	case errors.Is(err, proof.ErrMismatch):
		return fmt.Errorf("%w: %v", service.ErrConflict, err)
	}
	return err
}

func (g *globals) writeProof(out string, v any, what string) error {
	b, err := proof.Encode(v)
	if err != nil {
		return err
	}
	if err := g.writeOut(out, b, 0o644); err != nil {
		return err
	}
	if out != "-" {
		fmt.Fprintf(g.stdout, "Wrote %s to %s\nCheck it offline with: custodian audit check-proof %s --verifier-key KEY\n%s\n", what, out, out, out)
	}
	return nil
}

func newProveCmd(g *globals) *cobra.Command {
	var out, ledger string
	c := &cobra.Command{
		Use:   "prove INDEX --out FILE [--config FILE | --ledger EXPORT]",
		Short: "Write one event with its inclusion proof, for an auditor to keep and check offline",
		Long: `prove writes event INDEX with its RFC 6962 inclusion proof against the ledger's
latest signed checkpoint, as a custodian-inclusion-proof/v1 JSON file
(docs/auditing.md). Anyone can check it with the verifier key alone:
custodian audit check-proof FILE --verifier-key KEY, or the Python program in
docs/auditing.md. With --config it asks the daemon; with --ledger it reads an
exported ledger (custodian audit export) offline. The file's path is the last
line printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			index, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || index < 0 {
				return usageError{fmt.Errorf("INDEX: %q is not an event index (0 or more)", args[0])}
			}
			if out == "" {
				return usageError{errors.New("--out FILE is required (- for stdout)")}
			}
			var p proof.Inclusion
			if ledger != "" {
				l, err := openLedgerFile(ledger)
				if err != nil {
					return err
				}
				defer l.Close()
				if p, err = proof.Prove(l, index); err != nil {
					return proofCmdError(err)
				}
			} else {
				cl, err := g.client()
				if err != nil {
					return err
				}
				if p, err = cl.ProveEvent(cmd.Context(), index); err != nil {
					return err
				}
			}
			return g.writeProof(out, p, fmt.Sprintf("the inclusion proof of event %d", index))
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "file to write (must not exist; - for stdout)")
	c.Flags().StringVar(&ledger, "ledger", "", "prove from this exported ledger file, offline")
	return c
}

func newConsistencyCmd(g *globals) *cobra.Command {
	var out, oldFile, newFile, ledger string
	c := &cobra.Command{
		Use:   "consistency --old C1 [--new C2] --out FILE [--config FILE | --ledger EXPORT]",
		Short: "Prove that the ledger only grew between two kept checkpoints",
		Long: `consistency writes a custodian-consistency-proof/v1 JSON file proving that the
tree of checkpoint C1 is a prefix of the tree of checkpoint C2 (default: the
ledger's current checkpoint): nothing C1 covered was changed or removed. C1 and
C2 are files holding signed checkpoints (custodian audit checkpoint, or the
files custodian audit checkpoints lists, possibly cosigned). It fails (exit 1)
when the ledger no longer holds what a checkpoint signs: rewritten or truncated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if oldFile == "" || out == "" {
				return usageError{errors.New("--old FILE and --out FILE are required")}
			}
			oldCP, err := readArgFile("--old", oldFile)
			if err != nil {
				return err
			}
			var newCP []byte
			if newFile != "" {
				if newCP, err = readArgFile("--new", newFile); err != nil {
					return err
				}
			}
			var p proof.Consistency
			if ledger != "" {
				l, err := openLedgerFile(ledger)
				if err != nil {
					return err
				}
				defer l.Close()
				if p, err = proof.ProveConsistency(l, oldCP, newCP); err != nil {
					return proofCmdError(err)
				}
			} else {
				cl, err := g.client()
				if err != nil {
					return err
				}
				if p, err = cl.ProveConsistency(cmd.Context(), string(oldCP), string(newCP)); err != nil {
					return err
				}
			}
			return g.writeProof(out, p, "the consistency proof")
		},
	}
	c.Flags().StringVar(&oldFile, "old", "", "file holding the earlier checkpoint")
	c.Flags().StringVar(&newFile, "new", "", "file holding the later checkpoint (default: the current one)")
	c.Flags().StringVarP(&out, "out", "o", "", "file to write (must not exist; - for stdout)")
	c.Flags().StringVar(&ledger, "ledger", "", "prove from this exported ledger file, offline")
	return c
}

func newCheckProofCmd(g *globals) *cobra.Command {
	var vkey string
	var cosigners []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "check-proof FILE [--verifier-key KEY|FILE] [--cosigner-key KEY|FILE]...",
		Short: "Check an inclusion or consistency proof offline (no daemon, no ledger) and show what it proves",
		Long: `check-proof verifies a proof file written by custodian audit prove or custodian
audit consistency, offline: the checkpoint signatures (Ed25519) and the RFC 6962
path to the signed root hash. For an inclusion proof it prints the event. The
file must be byte for byte as written: any changed byte fails (exit 1).
Give --verifier-key with the ledger key you hold: without it the key written in
the file is used, which proves only that the file is consistent with itself.
A checkpoint cosigned by an auditor needs that auditor's --cosigner-key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readArgFile("FILE", args[0])
			if err != nil {
				return err
			}
			opts, err := checkOptions(vkey, cosigners)
			if err != nil {
				return err
			}
			r, err := proof.Check(data, opts)
			if err != nil {
				return g.checkFailed("proof", asJSON, err)
			}
			if asJSON {
				return writeJSON(g.stdout, checkResultJSON(r))
			}
			fmt.Fprint(g.stdout, r.String())
			return nil
		},
	}
	c.Flags().StringVar(&vkey, "verifier-key", "", "the ledger's verifier key you hold, or a file holding it")
	c.Flags().StringArrayVar(&cosigners, "cosigner-key", nil, "a cosigner's verifier key, or a file holding it (repeatable)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func checkResultJSON(r *proof.Result) map[string]any {
	m := map[string]any{"ok": true, "kind": r.Kind, "verifier_key": r.VerifierKey, "key_given": r.KeyTrusted, "cosigners": r.Cosigners}
	if r.Kind == "inclusion" {
		m["index"], m["tree_size"], m["root_hash"] = r.Index, r.Tree.N, r.Tree.Hash.String()
		m["event"] = service.ViewEvent(*r.Event)
	} else {
		m["old_size"], m["old_root_hash"], m["new_size"], m["new_root_hash"] = r.Old.N, r.Old.Hash.String(), r.New.N, r.New.Hash.String()
	}
	return m
}

func newCheckpointsCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "checkpoints --config FILE [--json]",
		Short: "List the checkpoints the daemon kept (checkpoints.dir): size, time, file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			ks, err := cl.KeptCheckpoints(cmd.Context())
			if err != nil {
				return err
			}
			if ks == nil {
				ks = []proof.Kept{}
			}
			if asJSON {
				return writeJSON(g.stdout, ks)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SIZE\tTIME\tFILE")
			for _, k := range ks {
				fmt.Fprintf(tw, "%d\t%s\t%s\n", k.Size, k.Time.Local().Format("2006-01-02 15:04:05"), k.File)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newKeygenCmd(g *globals) *cobra.Command {
	var name, out string
	var asJSON bool
	c := &cobra.Command{
		Use:   "keygen --name NAME --out PREFIX [--json]",
		Short: "Make an auditor's own Ed25519 note key for cosigning checkpoints (run it off the host)",
		Long: `keygen writes PREFIX.key (the secret signer key, 0600) and PREFIX.pub (the
verifier key). Keep PREFIX.key on your own machine: custodian audit cosign uses
it there, and it never goes to the host. Give PREFIX.pub to whoever checks your
cosignatures (custodian audit verify --cosigner-key). The verifier key is the
last line printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || out == "" {
				return usageError{errors.New("--name NAME and --out PREFIX are required")}
			}
			skey, vkey, err := proof.GenerateKey(name)
			if err != nil {
				return usageError{err}
			}
			keyFile, pubFile := out+".key", out+".pub"
			for _, f := range []string{keyFile, pubFile} {
				if _, err := os.Lstat(f); err == nil {
					return usageError{fmt.Errorf("--out: %s exists; choose a new prefix", f)}
				}
			}
			if err := g.writeOut(keyFile, []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := g.writeOut(pubFile, []byte(vkey+"\n"), 0o644); err != nil {
				os.Remove(keyFile)
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, map[string]string{"id": vkey, "key_file": keyFile, "verifier_key_file": pubFile})
			}
			fmt.Fprintf(g.stdout, "Secret key: %s (keep it off the host)\nVerifier key: %s\n%s\n", keyFile, pubFile, vkey)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "the key's name, e.g. auditor.lin (no spaces, no '+')")
	c.Flags().StringVarP(&out, "out", "o", "", "prefix of the two files to write")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newCosignCmd(g *globals) *cobra.Command {
	var keyFile, vkey, out string
	c := &cobra.Command{
		Use:   "cosign --key AUDITOR.key [--verifier-key KEY|FILE] CHECKPOINT [--out FILE]",
		Short: "Add your own signature to a checkpoint (a witness cosignature; your key stays with you)",
		Long: `cosign appends a second signature line to a signed checkpoint, made with your
own key (custodian audit keygen): you vouch that you saw the ledger at this size
and root hash. Give --verifier-key (the ledger's key you hold) to check the
ledger's signature before you sign. Keep the cosigned checkpoint off the host;
custodian audit verify --cosigned FILE --cosigner-key YOUR.pub later proves the
ledger still contains everything it covered. Runs offline; the cosigned
checkpoint goes to --out (the file is the last line printed) or to stdout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return usageError{errors.New("--key FILE (your secret key from custodian audit keygen) is required")}
			}
			if err := daemon.CheckSecretFile("--key", keyFile); err != nil {
				return err
			}
			skey, err := readArgFile("--key", keyFile)
			if err != nil {
				return err
			}
			cp, err := readArgFile("CHECKPOINT", args[0])
			if err != nil {
				return err
			}
			if vkey != "" {
				if vkey, err = readKeyArg(vkey); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(g.stderr, "warning: no --verifier-key: the ledger's signature on the checkpoint was not checked before you signed it")
			}
			cs, err := proof.Cosign(cp, string(skey), vkey)
			if err != nil {
				return fmt.Errorf("%w: %v", service.ErrRefused, err)
			}
			if out == "" {
				out = "-"
			}
			if err := g.writeOut(out, cs, 0o644); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(g.stdout, "Cosigned checkpoint written to %s; keep it off the host\n%s\n", out, out)
			}
			return nil
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "your secret key file (0600), from custodian audit keygen")
	c.Flags().StringVar(&vkey, "verifier-key", "", "the ledger's verifier key, or a file holding it: check the ledger's signature first")
	c.Flags().StringVarP(&out, "out", "o", "", "file to write (must not exist; default stdout)")
	return c
}

// verifyCosigned checks each cosigned checkpoint's two signatures, then the
// ledger against it (through verify, the daemon's or a file's). It prints a
// line per file and returns whether all passed.
func (g *globals) verifyCosigned(files []string, cosignerKey, ledgerKey string, keyFromLedger bool,
	verify func(audit.VerifyOptions) (*audit.Report, error)) (bool, error) {
	ok := true
	if keyFromLedger {
		fmt.Fprintf(g.stdout, "ledger key %s taken from the ledger itself: give --verifier-key with the key you hold\n", ledgerKey)
	}
	for _, f := range files {
		b, err := readArgFile("--cosigned", f)
		if err != nil {
			return false, err
		}
		cp, err := proof.OpenCheckpoint(b, ledgerKey, cosignerKey)
		if err == nil && len(cp.Cosigners) == 0 {
			err = errors.New("it is not cosigned by the cosigner key given")
		}
		if err != nil {
			ok = false
			fmt.Fprintf(g.stdout, "FAILED  %s: %v\n", f, err)
			continue
		}
		rep, err := verify(audit.VerifyOptions{VerifierKey: ledgerKey, Checkpoint: b})
		if err != nil {
			return false, err
		}
		if !rep.OK {
			ok = false
			fmt.Fprintf(g.stdout, "FAILED  %s (size %d, cosigned by %s): the ledger is not an extension of it\n%s", f, cp.Tree.N, strings.Join(cp.Cosigners, ", "), rep.String())
			continue
		}
		fmt.Fprintf(g.stdout, "OK      %s (size %d, cosigned by %s): the ledger of %d events contains everything it covered\n", f, cp.Tree.N, strings.Join(cp.Cosigners, ", "), rep.Events)
	}
	return ok, nil
}

// parseWhen reads --since/--until: RFC 3339, or a local date YYYY-MM-DD
// (as --until: the end of that day).
func parseWhen(flag, s string, endOfDay bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s: %q is neither RFC 3339 (2026-12-01T08:00:00+08:00) nor a date (2026-12-01)", flag, s)}
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// printEventsCSV writes events as CSV: index, time (RFC 3339, UTC), actor,
// type, job, dataset, details (key=value; sorted).
func printEventsCSV(w io.Writer, evs []service.EventView) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"index", "time", "actor", "type", "job", "dataset_id", "details"}); err != nil {
		return err
	}
	for _, e := range evs {
		var det []string
		for k, v := range e.Details {
			det = append(det, k+"="+v)
		}
		slices.Sort(det)
		if err := cw.Write([]string{strconv.FormatInt(e.Index, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Actor, e.Type, e.Job, e.DatasetID, strings.Join(det, "; ")}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func newTimelineCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "timeline ID --config FILE [--json]",
		Short: "Show one dataset's full custody chain: every event with its index and actor",
		Long: `timeline lists every ledger event of one dataset, from receipt on, each with its
ledger index and the person answerable, so that an auditor can pull a proof of
any of them: custodian audit prove INDEX --out FILE.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			d, err := cl.Dataset(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			g.warnLedger(cl)
			if d.Timeline == nil {
				d.Timeline = []service.EventView{}
			}
			if asJSON {
				return writeJSON(g.stdout, d.Timeline)
			}
			fmt.Fprintf(g.stdout, "Custody chain of %s (%s, now %s, custodian %s):\n", d.Dataset.ID, d.Dataset.RemotePath, d.Dataset.State, d.Dataset.Custodian)
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tTIME\tACTOR\tEVENT\tSTATE\tDETAILS")
			for _, e := range d.Timeline {
				state := ""
				if e.Dataset != nil {
					state = e.Dataset.State
				}
				var det []string
				for k, v := range e.Details {
					det = append(det, k+"="+v)
				}
				slices.Sort(det)
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Index, e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Type, state, strings.Join(det, " "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Prove any of them: custodian audit prove INDEX --out FILE")
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the events as JSON")
	return c
}

// checkFailed reports an offline check that failed: on stderr, and with
// --json as {"ok": false, "error": ...} on stdout; exit 1.
func (g *globals) checkFailed(what string, asJSON bool, err error) error {
	if asJSON {
		_ = writeJSON(g.stdout, map[string]any{"ok": false, "error": err.Error()})
	}
	fmt.Fprintf(g.stderr, "%s FAILED: %v\n", what, err)
	return errFailed
}

// checkOptions are the keys an offline check trusts: --verifier-key and
// each --cosigner-key (a key, or a file holding one).
func checkOptions(vkey string, cosigners []string) (proof.Options, error) {
	var opts proof.Options
	var err error
	if vkey != "" {
		if opts.VerifierKey, err = readKeyArg(vkey); err != nil {
			return opts, err
		}
	}
	for _, k := range cosigners {
		ck, err := readKeyArg(k)
		if err != nil {
			return opts, err
		}
		opts.Cosigners = append(opts.Cosigners, ck)
	}
	return opts, nil
}
