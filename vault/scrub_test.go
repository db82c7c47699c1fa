package vault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/transfer/integrity"
)

// TestCheckObject: an object matches its ledger record by size, SHA-256 and
// record count (under the counting rule kept with the dataset); any
// difference is reported with what the ledger says.
func TestCheckObject(t *testing.T) {
	v, ident := newTestVault(t)
	data := []byte("HDR|x\nrec1\nrec2\nrec3\nTRL3\n")
	info := store(t, v, data)
	sum := sha256.Sum256(data)
	spec, err := integrity.NewCountSpec(`^HDR\|`, `^TRL(\d+)$`, 0, false, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	good := audit.Dataset{ID: "ds-1", ObjectID: info.ID, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Records: 3,
		Integrity: integrity.EncodeSpec(spec)}
	if err := v.CheckObject(context.Background(), ident, good); err != nil {
		t.Fatalf("the object as received: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*audit.Dataset)
		want string
	}{
		{"size", func(d *audit.Dataset) { d.Size++ }, "bytes, ledger says"},
		{"digest", func(d *audit.Dataset) { d.SHA256 = strings.Repeat("0", 64) }, "SHA-256"},
		{"records", func(d *audit.Dataset) { d.Records = 4 }, "3 records, ledger says 4"},
		{"rule", func(d *audit.Dataset) { d.Integrity = map[string]string{integrity.KeyCountHeader: "("} }, "counting rule"},
		{"rule changed", func(d *audit.Dataset) { d.Integrity = map[string]string{} }, "5 records, ledger says 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := good
			d.Integrity = map[string]string{}
			for k, val := range good.Integrity {
				d.Integrity[k] = val
			}
			tc.edit(&d)
			if err := v.CheckObject(context.Background(), ident, d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.CheckObject(ctx, ident, good); err == nil {
		t.Fatal("a cancelled check must not succeed")
	}
}
