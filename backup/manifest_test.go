package backup

import (
	"strings"
	"testing"
	"time"

	"custodian/audit"
)

// TestManifestRoundTrip: a signed manifest opens with its key only, parses
// back to what was signed, and is never mistaken for a checkpoint (same
// key, different first line); malformed lines and unsafe paths are refused.
func TestManifestRoundTrip(t *testing.T) {
	skey, vkey, err := audit.GenerateSigningKey("custodian-ledger/test")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := audit.NewSigner(skey)
	sum := strings.Repeat("ab", 32)
	m := &Manifest{LedgerSize: 7, TreeHash: "aGFzaA==", Snapshot: "snapshot-7", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Files: []Entry{{sum, "vault/master.pub"}, {sum, "keys/ledger.vkey"}}}
	signed, err := m.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenManifest(signed, vkey)
	if err != nil || got.LedgerSize != 7 || got.Snapshot != "snapshot-7" || len(got.Files) != 2 || got.Files[0].Path != "keys/ledger.vkey" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, ok := got.Lookup("vault/master.pub"); !ok {
		t.Fatal("lookup")
	}
	_, other, _ := audit.GenerateSigningKey("custodian-ledger/test")
	if _, err := OpenManifest(signed, other); err == nil {
		t.Fatal("a manifest opened with another key")
	}
	if _, err := audit.ParseCheckpoint(signed, vkey); err == nil {
		t.Fatal("a manifest was read as a checkpoint")
	}
	for _, bad := range []string{
		"custodian-backup/1\nledger 7 h\nsnapshot snapshot-7\ncreated 2026-01-02T03:04:05Z\n" + sum + "  ../etc/passwd\n",
		"custodian-backup/1\nledger 7 h\nsnapshot snapshot-7\ncreated 2026-01-02T03:04:05Z\n" + sum + "  /abs\n",
		"custodian-backup/1\nledger 7 h\nsnapshot ../x\ncreated 2026-01-02T03:04:05Z\n",
		"custodian-backup/1\nledger 7 h\nsnapshot snapshot-7\ncreated 2026-01-02T03:04:05Z\n" + sum + "  b\n" + sum + "  a\n",
		"custodian-backup/2\n",
	} {
		if _, err := ParseManifest(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
