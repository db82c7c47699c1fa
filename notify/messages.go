package notify

import (
	"fmt"
	"strconv"
	"strings"

	"custodian/transfer"
)

// Notification is one message of one kind, ready for Notify.
type Notification struct {
	Kind    Kind
	Message Message
}

// FromRun returns what a run says to people: job.failed when the run
// failed, and one file.quarantined or file.held per such file. Files are
// named by dataset ID; their remote names, and the reasons and errors (which
// may quote names), only when names is true. Nothing from a file's contents
// is in a run result, so nothing from it can be in a message.
func FromRun(res *transfer.RunResult, names bool) []Notification {
	if res == nil {
		return nil
	}
	var out []Notification
	for _, f := range res.Files {
		if f.Repeat {
			continue
		}
		var kind Kind
		switch f.Outcome {
		case "quarantined":
			kind = FileQuarantined
		case "held":
			kind = FileHeld
		default:
			continue
		}
		fields := map[string]string{"job": res.Job, "dataset": f.DatasetID, "outcome": f.Outcome}
		var b strings.Builder
		fmt.Fprintf(&b, "Job %s stored dataset %s as %s.\n", res.Job, f.DatasetID, f.Outcome)
		if names {
			fmt.Fprintf(&b, "Remote file: %s\nReason: %s\n", f.Remote, f.Reason)
			fields["remote_path"], fields["reason"] = f.Remote, f.Reason
		}
		if kind == FileHeld {
			b.WriteString("\nA change file out of sequence is held: nothing after a gap is accepted silently.\n")
		} else {
			b.WriteString("\nIt is stored encrypted and never counted as verified.\n")
		}
		fmt.Fprintf(&b, "See `custodian dataset show %s`; pull it again with `custodian dataset repull` or accept it with `custodian dataset release`, with a reason.\n", f.DatasetID)
		out = append(out, Notification{kind, Message{
			Subject: fmt.Sprintf("%s: dataset %s %s", res.Job, f.DatasetID, f.Outcome),
			Text:    b.String(), Fields: fields}})
	}
	if !res.Failed() {
		return out
	}
	counts := map[string]int{}
	var ids []string
	for _, f := range res.Files {
		counts[f.Outcome]++
		if f.Failed() && f.DatasetID != "" {
			ids = append(ids, f.DatasetID)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Job %s failed (run by %s, started %s).\n", res.Job, res.Actor, res.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	fields := map[string]string{"job": res.Job, "actor": res.Actor, "files": strconv.Itoa(len(res.Files)), "skipped": strconv.Itoa(res.Skipped)}
	for _, o := range []string{"verified", "unverified", "quarantined", "held", "failed", "refused", "waiting"} {
		if counts[o] > 0 {
			fmt.Fprintf(&b, "  %s: %d\n", o, counts[o])
			fields[o] = strconv.Itoa(counts[o])
		}
	}
	if len(ids) > 0 {
		fmt.Fprintf(&b, "Datasets to look at: %s\n", strings.Join(ids, " "))
		fields["datasets"] = strings.Join(ids, " ")
	}
	switch {
	case names && res.Error != "":
		fmt.Fprintf(&b, "Error: %s\n", res.Error)
		fields["error"] = res.Error
	case res.Error != "":
		b.WriteString("The run itself failed (the error is on the ledger and in the daemon's log).\n")
	}
	if names {
		for _, f := range res.Files {
			if f.Failed() {
				fmt.Fprintf(&b, "  %s %s: %s\n", f.Outcome, f.Remote, f.Reason)
			}
		}
	}
	b.WriteString("See `custodian audit log` and `custodian dataset list`.\n")
	out = append([]Notification{{JobFailed, Message{Subject: "job " + res.Job + " failed", Text: b.String(), Fields: fields}}}, out...)
	return out
}

// VerifyFailedMessage is the message of a failed ledger verification. The
// first problem names ledger entries and fields, never contents, but may
// quote a remote path: it is left out unless names is true.
func VerifyFailedMessage(check, firstProblem, incident string, names bool) Message {
	fields := map[string]string{"check": check, "incident": incident}
	if names {
		fields["first_problem"] = firstProblem
	} else {
		firstProblem = "(in the incident report)"
	}
	text := fmt.Sprintf("The custody ledger failed verification (%s).\nFirst problem: %s\n"+
		"custodian accepts no work and writes nothing to the ledger until the installation is restored.\n"+
		"Incident report on the host: %s\nRun `custodian audit verify` for the details.\n", check, firstProblem, incident)
	return Message{Subject: "LEDGER FAILED VERIFICATION", Text: text, Fields: fields}
}

// CheckpointMessage is the daily mail of the ledger's signed checkpoint,
// so that a copy exists off the host. The checkpoint is the body itself.
func CheckpointMessage(unit, checkpoint, verifierKey string) Message {
	text := "The custody ledger's latest signed checkpoint (unit " + unit + ") follows. Keep this mail:\n" +
		"`custodian audit verify --db LEDGER --checkpoint FILE --verifier-key KEY` proves that a ledger still\n" +
		"contains everything this checkpoint covered.\n\n" + checkpoint + "\nVerifier key:\n" + verifierKey + "\n"
	return Message{Subject: "daily ledger checkpoint", Text: text,
		Fields: map[string]string{"unit": unit, "checkpoint": checkpoint, "verifier_key": verifierKey}}
}
