package audit

import (
	"bytes"
	"errors"
	"testing"
)

// TestTamper: each tamper hook changes what it says, and Verify finds it.
func TestTamper(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	setup := func(t *testing.T) string {
		l, path := openTest(t, key)
		fill(t, l, 0, 8)
		if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
			t.Fatalf("before tampering: %v %s", err, rep)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("event", func(t *testing.T) {
		path := setup(t)
		err := TamperEvent(path, 3, func(leaf []byte) []byte {
			return bytes.Replace(leaf, []byte(`"type":"job.finished"`), []byte(`"type":"job.fhnished"`), 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		rep := verifyFile(t, path, VerifyOptions{VerifierKey: key.vkey})
		if rep.OK || rep.FirstBad != 3 || !hasKind(rep, ProblemHash) {
			t.Fatalf("a changed event must be found at its index: %s", rep)
		}
	})
	t.Run("dataset", func(t *testing.T) {
		path := setup(t)
		err := TamperDataset(path, "ds-000001", func(rec []byte) []byte {
			return bytes.Replace(rec, []byte(`"state":"verified"`), []byte(`"state":"released"`), 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep := verifyFile(t, path, VerifyOptions{VerifierKey: key.vkey}); rep.OK || !hasKind(rep, ProblemDataset) {
			t.Fatalf("a changed dataset record must be found: %s", rep)
		}
	})
	t.Run("verifier-key", func(t *testing.T) {
		path := setup(t)
		other := newTestKey(t, "custodian.test/other")
		if err := TamperVerifierKey(path, other.vkey); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if got, _ := l.VerifierKey(); got != other.vkey {
			t.Fatalf("recorded verifier key %q, want %q", got, other.vkey)
		}
		if rep, _ := Verify(l, VerifyOptions{VerifierKey: key.vkey}); rep.OK || !hasKind(rep, ProblemMeta) {
			t.Fatalf("a replaced verifier key must be found: %s", rep)
		}
	})
	t.Run("errors", func(t *testing.T) {
		path := setup(t)
		if err := TamperEvent(path, 99, func(b []byte) []byte { return b }); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("missing event: %v", err)
		}
		if err := TamperDataset(path, "ds-000001", nil); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("nil edit: %v", err)
		}
		l, err := Open(path, Options{Signer: key.signer, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := TamperEvent(path, 0, func(b []byte) []byte { return b }); !errors.Is(err, ErrLocked) {
			t.Fatalf("a ledger open elsewhere must be refused with ErrLocked: %v", err)
		}
		if _, err := Open(path, Options{ReadOnly: true, Timeout: 10e6}); !errors.Is(err, ErrLocked) {
			t.Fatalf("Open of a locked ledger: %v", err)
		}
	})
}
