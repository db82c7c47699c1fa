package service

import (
	"context"
	"testing"

	"filippo.io/age"

	"custodian/accounts"
	"custodian/audit"
)

// TestMayCarryOut: the console's question "may this person carry out
// this request now?" follows the approvals engine: only once approved,
// only the requester for an export or a read, never the approver, and
// only with the action that carries out that kind.
func TestMayCarryOut(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	l.store("ds-1", audit.StateVerified, []byte("HDR|1\nA123456789\nTRL1\n"))
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	q, err := l.s.FileExport(ctx, l.actor["olga"], ExportRequest{Dataset: "ds-1", Recipient: id.Recipient().String(), Purpose: "vaccination", Case: "C-1", Reason: "for the county's vaccination team"})
	if err != nil {
		t.Fatal(err)
	}
	if l.s.MayCarryOut(l.actor["olga"], q, ActRunExport) {
		t.Fatal("an export may be run before its approval")
	}
	if q, err = l.s.Approve(ctx, l.actor["sue"], q.ID, "the team's request letter is on file"); err != nil {
		t.Fatal(err)
	}
	for who, want := range map[string]bool{"olga": true, "sue": false, "aud": false} {
		if got := l.s.MayCarryOut(l.actor[who], q, ActRunExport); got != want {
			t.Errorf("%s may run the approved export: %v, want %v", who, got, want)
		}
	}
	if l.s.MayCarryOut(l.actor["olga"], q, ActDestroy) || l.s.MayCarryOut(l.actor["olga"], q, ActReadDataset) {
		t.Error("an export is carried out by running it, not by another action")
	}
	if CarriedOutBy(accounts.KindExport) != ActRunExport || CarriedOutBy(accounts.KindEmergencyUse) != ActReadDataset ||
		CarriedOutBy(accounts.KindAccountCreate) != "" {
		t.Error("CarriedOutBy names the wrong actions")
	}
}
