package transfer

import (
	"fmt"

	"custodian/audit"
	"custodian/transfer/integrity"
)

// Expected is what the provider declared for one file, and what the job
// says about it before a byte is read.
type Expected struct {
	// Algo and Digest: the provider's digest (hex) in Algo, from a sidecar
	// or the manifest. With checksum none, Algo is sha256 and Digest empty.
	Algo   integrity.Algo
	Digest string
	// Size and Records: what the manifest declares, or -1 if unknown.
	Size    int64
	Records int64
	// Unchecked: checksum none (allow_unverified); completeness cannot be
	// proven.
	Unchecked bool
	// Held: why the file's sequence number does not follow on, if it does
	// not.
	Held string
}

// Observed is what the single pass over the bytes found.
type Observed struct {
	// Size is the number of bytes received.
	Size int64
	// SHA256 is the SHA-256 of the bytes received (hex): what the ledger
	// records, whatever the provider declared.
	SHA256 string
	// Digest is the digest of the bytes received in Expected.Algo (hex).
	Digest string
	// Count is the record counter's result; its problems (a header or
	// trailer count that disagrees, a bad record length, a gzip ceiling)
	// disprove the file's integrity.
	Count integrity.CountResult
}

// unverifiedReason is the reason recorded with a file received under
// checksum none.
const unverifiedReason = "checksum: none (allow_unverified); completeness not proven"

// judge is the verdict on one received file: verified only if everything
// the provider declared agrees with what was received. Any disagreement
// quarantines the file, with every reason; a proven file whose sequence
// number does not follow on is held; a file nothing was declared for
// (checksum none) is unverified. reasons is empty exactly when the state is
// verified. judge has no I/O: it is a rule over data.
func judge(e Expected, o Observed) (state audit.State, reasons []string) {
	if !e.Unchecked && o.Digest != e.Digest {
		reasons = append(reasons, fmt.Sprintf("%s mismatch: computed %s, provider declared %s", e.Algo, o.Digest, e.Digest))
	}
	if e.Size >= 0 && e.Size != o.Size {
		reasons = append(reasons, fmt.Sprintf("size mismatch: received %d bytes, manifest declares %d", o.Size, e.Size))
	}
	// The counter itself reports a header or trailer that disagrees with the
	// records; the manifest's count is checked here.
	if e.Records >= 0 {
		if o.Count.Declared >= 0 && o.Count.Declared != e.Records {
			reasons = append(reasons, fmt.Sprintf("the %s declares %d records but the manifest %d", o.Count.DeclaredBy, o.Count.Declared, e.Records))
		}
		if e.Records != o.Count.Records {
			reasons = append(reasons, fmt.Sprintf("record count mismatch: counted %d, manifest declares %d", o.Count.Records, e.Records))
		}
	}
	reasons = append(reasons, o.Count.Problems...)
	switch {
	case len(reasons) > 0:
		return audit.StateQuarantined, reasons
	case e.Held != "":
		return audit.StateHeld, []string{e.Held}
	case e.Unchecked:
		return audit.StateUnverified, []string{unverifiedReason}
	}
	return audit.StateVerified, nil
}
