package vault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"custodian/audit"
	"custodian/transfer/integrity"
)

// CheckObject decrypts one dataset's object as a stream (plaintext stays in
// memory buffers) and checks its size, SHA-256 and record count against the
// ledger's record d. The count uses the counting rule recorded with d (the
// integrity package's count.* keys), so it agrees with ingest even after the
// job's configuration changed. A nil error means the object is exactly what
// was received.
func (v *Vault) CheckObject(ctx context.Context, ident *Identity, d audit.Dataset) error {
	spec, err := integrity.DecodeSpec(d.Integrity)
	if err != nil {
		return fmt.Errorf("dataset %s: counting rule: %w", d.ID, err)
	}
	rc, err := v.Open(d.ObjectID, ident)
	if err != nil {
		return fmt.Errorf("object %s: %w", d.ObjectID, err)
	}
	defer rc.Close()
	sum := sha256.New()
	counter := integrity.NewCounter(spec)
	n, err := io.Copy(io.MultiWriter(sum, counter), ctxReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("object %s: decrypting after %d bytes: %w", d.ObjectID, n, err)
	}
	counter.Close()
	if n != d.Size {
		return fmt.Errorf("object %s: %d bytes, ledger says %d", d.ObjectID, n, d.Size)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != d.SHA256 {
		return fmt.Errorf("object %s: SHA-256 %s, ledger says %s", d.ObjectID, got, d.SHA256)
	}
	if r := counter.Result(); r.Records != d.Records {
		why := ""
		for _, p := range r.Problems {
			if strings.HasPrefix(p, "gzip: ") {
				why = " (" + p + ")"
				break
			}
		}
		return fmt.Errorf("object %s: %d records, ledger says %d%s", d.ObjectID, r.Records, d.Records, why)
	}
	return nil
}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
