package backup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"custodian/audit"
	"custodian/transfer"
	"custodian/vault"
)

// VerifyOptions configure [Verify].
type VerifyOptions struct {
	// VerifierKey is the ledger's verifier key as the auditors hold it. If
	// empty, the backup's own keys/ledger.vkey is used, which proves the
	// backup consistent, not authentic.
	VerifierKey string
	// Checkpoint is a signed checkpoint kept outside the host: a backup
	// whose ledger is older than it, or inconsistent with it, is a
	// rollback.
	Checkpoint []byte
	// Passphrase, if set, unlocks the backup's vault key: every object is
	// then decrypted (in memory, streaming) and checked against the ledger,
	// and the sealed signing key is checked against the verifier key.
	Passphrase []byte
	// Progress, if set, is called after each object decrypted.
	Progress func(done, total int)
}

// Problem is one finding of Verify, naming the file concerned.
type Problem struct {
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return p.Path + ": " + p.Detail }

// Report is the result of [Verify].
type Report struct {
	ID                string        `json:"id,omitempty"`
	Dir               string        `json:"dir"`
	LedgerSize        int64         `json:"ledger_size"`
	Files             int           `json:"files"`
	Bytes             int64         `json:"bytes"`
	Objects           int           `json:"objects"`
	Decrypted         int           `json:"objects_decrypted"`
	VerifierKey       string        `json:"verifier_key"`
	VerifierKeySource string        `json:"verifier_key_source"` // "options" or "backup"
	KeptCheckpoint    int64         `json:"kept_checkpoint_size,omitempty"`
	Rollback          bool          `json:"rollback"`
	Problems          []Problem     `json:"problems"`
	Unlisted          []string      `json:"unlisted,omitempty"` // files the manifest does not name (ignored)
	Ledger            *audit.Report `json:"ledger,omitempty"`
	Manifest          *Manifest     `json:"-"`
	ManifestSHA256    string        `json:"manifest_sha256,omitempty"`
	OK                bool          `json:"ok"`
}

func (r *Report) add(path, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{path, fmt.Sprintf(format, args...)})
}

// String is a summary naming every problem.
func (r *Report) String() string {
	var b strings.Builder
	if r.OK {
		fmt.Fprintf(&b, "backup OK: %s, ledger of %d events, %d objects", r.ID, r.LedgerSize, r.Objects)
		if r.Decrypted > 0 {
			fmt.Fprintf(&b, " (%d decrypted and checked against the ledger)", r.Decrypted)
		}
		fmt.Fprintf(&b, ", %d files, every hash matches the signed manifest\n", r.Files)
		if r.KeptCheckpoint > 0 {
			fmt.Fprintf(&b, "the ledger contains the kept checkpoint of size %d\n", r.KeptCheckpoint)
		}
	} else {
		what := "backup FAILED verification"
		if r.Rollback {
			what = "backup FAILED verification: ROLLBACK (its ledger is older than, or inconsistent with, the kept checkpoint)"
		}
		fmt.Fprintf(&b, "%s: %d problem(s)\n", what, len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	for _, u := range r.Unlisted {
		fmt.Fprintf(&b, "note: %s is not in the manifest (ignored)\n", u)
	}
	if r.VerifierKeySource == "backup" {
		fmt.Fprintf(&b, "verifier key %s (taken from the backup itself: proves consistency, not authenticity; give --verifier-key)\n", r.VerifierKey)
	} else if r.VerifierKey != "" {
		fmt.Fprintf(&b, "verifier key %s (given)\n", r.VerifierKey)
	}
	return b.String()
}

// Verify checks the backup in dir without a daemon; see the package
// documentation. It returns an error only if it could not run; findings are
// in the report, each naming its file.
func Verify(ctx context.Context, dir string, opts VerifyOptions) (*Report, error) {
	r := &Report{Dir: dir}
	defer func() { r.OK = len(r.Problems) == 0 }()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a backup directory: %v", dir, err)
	}
	msg, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		r.add(ManifestFile, "cannot be read: %v", err)
		return r, nil
	}
	r.VerifierKey, r.VerifierKeySource = opts.VerifierKey, "options"
	if r.VerifierKey == "" {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(VerifierKeyFile)))
		if err != nil {
			r.add(VerifierKeyFile, "cannot be read, and no verifier key was given: %v", err)
			return r, nil
		}
		r.VerifierKey, r.VerifierKeySource = strings.TrimSpace(string(b)), "backup"
	}
	m, err := OpenManifest(msg, r.VerifierKey)
	if err != nil {
		r.add(ManifestFile, "signature or format: %v", err)
		return r, nil
	}
	r.Manifest, r.LedgerSize = m, m.LedgerSize
	sum := sha256.Sum256(msg)
	r.ManifestSHA256 = hex.EncodeToString(sum[:])
	r.ID = ID(m.LedgerSize, r.ManifestSHA256)

	// Every listed file is there, a plain file, with its hash.
	listed := map[string]bool{ManifestFile: true}
	for _, e := range m.Files {
		listed[e.Path] = true
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.add(e.Path, "missing")
			continue
		case err != nil:
			r.add(e.Path, "%v", err)
			continue
		case !fi.Mode().IsRegular():
			r.add(e.Path, "is not a regular file (%s)", fi.Mode().Type())
			continue
		}
		got, err := hashFile(p)
		if err != nil {
			r.add(e.Path, "%v", err)
			continue
		}
		if got != e.SHA256 {
			r.add(e.Path, "SHA-256 %s, the signed manifest says %s: the file was changed", got, e.SHA256)
		}
		r.Files++
		r.Bytes += fi.Size()
	}
	for _, req := range []string{VerifierKeyFile, SealedSignerFile, MasterPubFile, MasterKeyFile, m.LedgerPath(), m.CheckpointPath()} {
		if !listed[req] {
			r.add(req, "not in the manifest; a backup always holds it")
		}
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel = filepath.ToSlash(rel); !listed[rel] {
			r.Unlisted = append(r.Unlisted, rel)
		}
		return nil
	})
	if len(r.Problems) > 0 {
		return r, nil // the ledger and objects are not worth reading
	}
	if r.VerifierKeySource == "options" {
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(VerifierKeyFile))); err == nil && strings.TrimSpace(string(b)) != r.VerifierKey {
			r.add(VerifierKeyFile, "holds %s, not the given verifier key", strings.TrimSpace(string(b)))
		}
	}

	// The ledger.
	led, err := audit.Open(filepath.Join(dir, filepath.FromSlash(m.LedgerPath())), audit.Options{ReadOnly: true})
	if err != nil {
		r.add(m.LedgerPath(), "%v", err)
		return r, nil
	}
	defer led.Close()
	if len(opts.Checkpoint) > 0 {
		tree, err := audit.ParseCheckpoint(opts.Checkpoint, r.VerifierKey)
		if err != nil {
			return nil, fmt.Errorf("the kept checkpoint: %w", err)
		}
		r.KeptCheckpoint = tree.N
	}
	rep, err := audit.Verify(led, audit.VerifyOptions{VerifierKey: r.VerifierKey, Checkpoint: opts.Checkpoint})
	if err != nil {
		return nil, err
	}
	r.Ledger = rep
	for _, p := range rep.Problems {
		if strings.Contains(p.Detail, "kept checkpoint") {
			r.Rollback = true
		}
		r.add(m.LedgerPath(), "%s", p)
	}
	if rep.Events != m.LedgerSize || rep.CheckpointSize != m.LedgerSize || rep.TreeHash != m.TreeHash {
		r.add(m.LedgerPath(), "holds %d events (checkpoint of %d, tree hash %s), the signed manifest says %d (tree hash %s)",
			rep.Events, rep.CheckpointSize, rep.TreeHash, m.LedgerSize, m.TreeHash)
	}
	if cp, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m.CheckpointPath()))); err == nil {
		if tree, err := audit.ParseCheckpoint(cp, r.VerifierKey); err != nil {
			r.add(m.CheckpointPath(), "%v", err)
		} else if tree.N != m.LedgerSize || base64.StdEncoding.EncodeToString(tree.Hash[:]) != m.TreeHash {
			r.add(m.CheckpointPath(), "covers %d events, the manifest says %d", tree.N, m.LedgerSize)
		}
	}
	if evs, err := led.Events(0, 1); err != nil || len(evs) == 0 || evs[0].Type != audit.EvInstallationInitialized {
		r.add(m.LedgerPath(), "does not start with installation.initialized")
	} else if trusted, _, err := led.VaultRecipient(); err != nil {
		r.add(m.LedgerPath(), "%v", err)
	} else if pub, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(MasterPubFile))); err != nil ||
		strings.TrimSpace(string(pub)) != trusted {
		r.add(MasterPubFile, "is not the vault key the ledger records (%s: installation.initialized's, or the last vault.rotated's)", trusted)
	}

	// Every object the ledger names.
	plan, err := transfer.PlanScrub(led, m.LedgerSize)
	if err != nil {
		r.add(m.LedgerPath(), "listing its vault objects: %v", err)
		return r, nil
	}
	r.Objects = len(plan.Items)
	for _, it := range plan.Items {
		if !vault.ValidID(it.ObjectID) {
			r.add(m.LedgerPath(), "dataset %s names a malformed object %q", it.Dataset.ID, it.ObjectID)
			continue
		}
		if !listed[ObjectPath(it.ObjectID)] {
			r.add(ObjectPath(it.ObjectID), "missing: dataset %s's object is not in the backup", it.Dataset.ID)
		}
	}
	if len(opts.Passphrase) == 0 || len(r.Problems) > 0 {
		return r, nil
	}

	// With the passphrase: decrypt everything.
	v, err := vault.Open(filepath.Join(dir, "vault"))
	if err != nil {
		return nil, fmt.Errorf("opening the backup's vault: %w", err)
	}
	ident, err := v.Unlock(opts.Passphrase)
	if err != nil {
		return nil, err
	}
	if sealed, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(SealedSignerFile))); err != nil {
		r.add(SealedSignerFile, "%v", err)
	} else if skey, err := ident.Unseal(sealed); err != nil {
		r.add(SealedSignerFile, "%v", err)
	} else {
		s, err := audit.NewSigner(string(skey))
		clear(skey)
		if err != nil {
			r.add(SealedSignerFile, "%v", err)
		} else if got := s.(audit.KeyedSigner).VerifierKey(); got != r.VerifierKey {
			r.add(SealedSignerFile, "holds the key of %s, not of the verifier key %s", got, r.VerifierKey)
		}
	}
	for i, it := range plan.Items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := v.CheckObject(ctx, ident, it.Dataset); err != nil {
			r.add(ObjectPath(it.ObjectID), "dataset %s: %v", it.Dataset.ID, err)
		} else {
			r.Decrypted++
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(plan.Items))
		}
	}
	return r, nil
}
