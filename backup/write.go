package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"custodian/audit"
	"custodian/internal/fsutil"
	"custodian/vault"
)

// ErrRefused: the backup directory cannot be used (unsafe, or another
// installation's backup). The message names the rule and the fix.
var ErrRefused = errors.New("backup refused")

// Source is the installation a backup is taken from. The daemon fills it.
type Source struct {
	Ledger          *audit.Ledger
	Vault           *vault.Vault // seals the signing key; holds only the public key
	VaultDir        string
	SigningKeyPath  string
	VerifierKeyPath string
	Signer          note.Signer // the ledger's key: signs the manifest
	// Config lists the configuration files to keep: name in the backup's
	// config/ directory -> path on this host.
	Config map[string]string
	Now    func() time.Time
}

// Progress reports a backup's copying: objects and bytes handled so far of
// the totals.
type Progress struct {
	Objects      int   `json:"objects"`
	ObjectsTotal int   `json:"objects_total"`
	Bytes        int64 `json:"bytes"`
	BytesTotal   int64 `json:"bytes_total"`
}

// Result summarises a backup.
type Result struct {
	ID             string `json:"id"`
	Dir            string `json:"dir"`
	LedgerSize     int64  `json:"ledger_size"`
	Objects        int    `json:"objects"`
	ObjectsCopied  int    `json:"objects_copied"`
	ObjectsPresent int    `json:"objects_present"`
	Bytes          int64  `json:"bytes"`
	BytesCopied    int64  `json:"bytes_copied"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// Write writes a backup of src into dir (absolute; created 0700 if it does
// not exist, else it must be the caller's, writable by no one else). See the
// package documentation for the layout and the order of the steps.
func Write(ctx context.Context, src Source, dir string, progress func(Progress)) (*Result, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: %q is not an absolute path; the daemon writes the backup, so name the directory absolutely", ErrRefused, dir)
	}
	dir = filepath.Clean(dir)
	ks, ok := src.Signer.(audit.KeyedSigner)
	if !ok {
		return nil, errors.New("backup: the signer does not know its verifier key")
	}
	vkey := ks.VerifierKey()
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	prev := previousManifest(dir, vkey)

	// 1. The ledger snapshot, first: it decides which objects belong in.
	snap, err := takeSnapshot(src.Ledger, dir, vkey, prev)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(filepath.Join(dir, snap.name))
		}
	}()
	files := []Entry{
		{snap.ledgerSum, snap.name + "/" + LedgerName},
		{snap.checkpointSum, snap.name + "/" + CheckpointName},
	}
	res := &Result{Dir: dir, LedgerSize: snap.size, Bytes: snap.bytes}

	// 2. The keys and the vault's key files: the same for the life of an
	// installation, written once.
	fixed, n, err := writeKeys(src, dir, vkey, prev)
	if err != nil {
		return nil, err
	}
	files = append(files, fixed...)
	res.Bytes += n

	// 3. The configuration.
	cfgFiles, n, err := writeConfig(src, dir, snap.name)
	if err != nil {
		return nil, err
	}
	files = append(files, cfgFiles...)
	res.Bytes += n

	// 4. The vault objects the snapshot names.
	objs, err := copyObjects(ctx, src.VaultDir, dir, snap.objects, prev, res, progress)
	if err != nil {
		return nil, err
	}
	files = append(files, objs...)
	if err := os.MkdirAll(filepath.Join(dir, "vault", "tmp"), 0o700); err != nil {
		return nil, err
	}

	// 5. The manifest: the commit point.
	slices.SortFunc(files, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	m := &Manifest{LedgerSize: snap.size, TreeHash: snap.treeHash, Snapshot: snap.name, Created: now().UTC(), Files: files}
	signed, err := m.Sign(src.Signer)
	if err != nil {
		return nil, fmt.Errorf("signing the manifest: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, ManifestFile), signed, 0o600); err != nil {
		return nil, err
	}
	keep = true
	// Objects of destroyed datasets and replaced key files, kept from an
	// earlier backup into this directory, are erased.
	if err := eraseUnlisted(dir, files); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(signed)
	res.ManifestSHA256 = hex.EncodeToString(sum[:])
	res.ID = ID(snap.size, res.ManifestSHA256)
	res.Bytes += int64(len(signed))

	// 6. Older snapshots are no longer named by the manifest.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && snapshotRe.MatchString(e.Name()) && e.Name() != snap.name {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return res, fsutil.SyncDir(dir)
}

// prepareDir creates dir (0700) or checks that it is a directory of this
// account, writable by no one else, and not a link.
func prepareDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err == nil {
		return fsutil.SyncDir(filepath.Dir(dir))
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: creating %s: %v (its parent must exist and be writable by the service account)", ErrRefused, dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrRefused, dir)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not by the service account (uid %d) that writes the backup; fix: chown the directory to the service account, or name a new directory", ErrRefused, dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %04o: others could replace what the backup writes; fix: chmod go-w %s", ErrRefused, dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// lock takes an exclusive lock on dir, so that two backups never write the
// same directory at once.
func lock(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is locked: another backup is writing it", ErrRefused, dir)
	}
	return func() { f.Close() }, nil
}

// previousManifest returns the backup's current manifest if its signature is
// the ledger key's, else nil (then nothing in dir is trusted).
func previousManifest(dir, vkey string) *Manifest {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil
	}
	m, err := OpenManifest(b, vkey)
	if err != nil {
		return nil
	}
	return m
}

type snapshot struct {
	name                     string
	size, bytes              int64
	treeHash                 string
	ledgerSum, checkpointSum string
	objects                  []string // sorted
}

// takeSnapshot copies the ledger into a new snapshot directory and reads,
// from the copy, its size, checkpoint and the vault objects it names.
func takeSnapshot(l *audit.Ledger, dir, vkey string, prev *Manifest) (*snapshot, error) {
	tmp, err := os.MkdirTemp(dir, ".snapshot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	lp := filepath.Join(tmp, LedgerName)
	f, err := os.OpenFile(lp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := l.Export(io.MultiWriter(f, h))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("taking the ledger snapshot: %w", err)
	}
	s := &snapshot{bytes: n, ledgerSum: hex.EncodeToString(h.Sum(nil))}
	snapLedger, err := audit.Open(lp, audit.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("reading the ledger snapshot: %w", err)
	}
	cp, err := snapLedger.Checkpoint()
	var ds []audit.Dataset
	if err == nil {
		s.size, err = snapLedger.Size()
	}
	if err == nil {
		ds, err = snapLedger.Datasets()
	}
	snapLedger.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the ledger snapshot: %w", err)
	}
	tree, err := audit.ParseCheckpoint(cp, vkey)
	if err != nil {
		return nil, err
	}
	if tree.N != s.size {
		return nil, fmt.Errorf("the ledger snapshot has %d events but its checkpoint covers %d", s.size, tree.N)
	}
	s.treeHash = base64.StdEncoding.EncodeToString(tree.Hash[:])
	seen := map[string]bool{}
	for _, d := range ds {
		if !d.State.Stored() {
			continue // destroyed: its objects are erased
		}
		for _, id := range d.Objects() {
			if !seen[id] {
				if !vault.ValidID(id) {
					return nil, fmt.Errorf("dataset %s names a malformed vault object %q", d.ID, id)
				}
				seen[id] = true
				s.objects = append(s.objects, id)
			}
		}
	}
	sort.Strings(s.objects)
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, CheckpointName), cp, 0o600); err != nil {
		return nil, err
	}
	cs := sha256.Sum256(cp)
	s.checkpointSum = hex.EncodeToString(cs[:])
	s.bytes += int64(len(cp))
	// The snapshot's directory: by ledger size, never the one the current
	// manifest names.
	base := snapshotPrefix + strconv.FormatInt(s.size, 10)
	s.name = base
	for i := 2; prev != nil && prev.Snapshot == s.name; i++ {
		s.name = base + "-" + strconv.Itoa(i)
	}
	// One of that name can only be left by an interrupted backup.
	if err := os.RemoveAll(filepath.Join(dir, s.name)); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, s.name)); err != nil {
		return nil, err
	}
	return s, fsutil.SyncDir(dir)
}

// writeKeys writes the keys and the vault's key files, once: each must
// either be absent or hold what this installation holds.
func writeKeys(src Source, dir, vkey string, prev *Manifest) ([]Entry, int64, error) {
	var out []Entry
	var total int64
	rotated := rotatedAway(src.Ledger, dir) // before master.pub is replaced
	for _, k := range []struct{ rel, from string }{
		{VerifierKeyFile, src.VerifierKeyPath},
		{MasterPubFile, filepath.Join(src.VaultDir, "master.pub")},
		{MasterKeyFile, filepath.Join(src.VaultDir, "master.key.age")},
	} {
		want, err := os.ReadFile(k.from)
		if err != nil {
			return nil, 0, err
		}
		dst := filepath.Join(dir, filepath.FromSlash(k.rel))
		have, err := os.ReadFile(dst)
		if err == nil && !bytes.Equal(have, want) && k.rel != VerifierKeyFile && rotated {
			// The vault's master key was rotated since this backup: its
			// old master key is overwritten, then replaced.
			if err := overwrite(dst); err != nil {
				return nil, 0, err
			}
			have, err = nil, fs.ErrNotExist
		}
		switch {
		case err == nil && !bytes.Equal(have, want):
			return nil, 0, fmt.Errorf("%w: %s differs from this installation's %s: the directory holds a backup of another installation (or a damaged one); name a new directory", ErrRefused, dst, filepath.Base(k.from))
		case errors.Is(err, fs.ErrNotExist):
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return nil, 0, err
			}
			if err := fsutil.WriteFileAtomic(dst, want, 0o600); err != nil {
				return nil, 0, err
			}
		case err != nil:
			return nil, 0, err
		}
		sum := sha256.Sum256(want)
		out = append(out, Entry{hex.EncodeToString(sum[:]), k.rel})
		total += int64(len(want))
	}
	// The signing key, sealed to the vault's key: sealing is randomised, so
	// a sealed copy the previous manifest vouches for is kept as it is.
	dst := filepath.Join(dir, filepath.FromSlash(SealedSignerFile))
	if rotated {
		// Sealed to the old master key: sealed again to the new one.
		if err := overwrite(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, 0, err
		}
	} else if prev != nil {
		if want, ok := prev.Lookup(SealedSignerFile); ok {
			if b, err := os.ReadFile(dst); err == nil {
				if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) == want {
					return append(out, Entry{want, SealedSignerFile}), total + int64(len(b)), nil
				}
			}
		}
	}
	skey, err := os.ReadFile(src.SigningKeyPath)
	if err != nil {
		return nil, 0, err
	}
	sealed, err := src.Vault.Seal(bytes.TrimSpace(skey))
	clear(skey)
	if err != nil {
		return nil, 0, err
	}
	if err := fsutil.WriteFileAtomic(dst, sealed, 0o600); err != nil {
		return nil, 0, err
	}
	sum := sha256.Sum256(sealed)
	return append(out, Entry{hex.EncodeToString(sum[:]), SealedSignerFile}), total + int64(len(sealed)), nil
}

// rotatedAway reports whether the backup in dir holds a vault public key
// this installation's ledger trusted before a rotation (not the current
// one): a backup of this installation taken before `vault rotate`.
func rotatedAway(led *audit.Ledger, dir string) bool {
	pub, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(MasterPubFile)))
	if err != nil {
		return false
	}
	chain, err := led.VaultRecipients()
	if err != nil || len(chain) < 2 {
		return false
	}
	return slices.Contains(chain[:len(chain)-1], strings.TrimSpace(string(pub)))
}

// overwrite overwrites a regular file with random bytes and fsyncs it
// (vault.Overwrite: what the backup held of a destroyed object, or an old
// master key), before it is removed or replaced; anything else at path is
// left to the caller.
func overwrite(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return err
	}
	return vault.Overwrite(path)
}

// eraseUnlisted overwrites and removes the vault objects and key files in
// dir that the new manifest no longer lists: the objects of destroyed
// datasets, and key files a rotation replaced.
func eraseUnlisted(dir string, files []Entry) error {
	listed := make(map[string]bool, len(files))
	for _, e := range files {
		listed[e.Path] = true
	}
	for _, sub := range []string{ObjectsDir, KeysDir} {
		root := filepath.Join(dir, filepath.FromSlash(sub))
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			if listed[filepath.ToSlash(rel)] {
				return nil
			}
			if err := overwrite(p); err != nil {
				return err
			}
			return os.Remove(p)
		})
		if err != nil {
			return fmt.Errorf("erasing what the backup no longer holds: %w", err)
		}
	}
	return nil
}

// writeConfig copies the configuration files into the snapshot directory.
func writeConfig(src Source, dir, snap string) ([]Entry, int64, error) {
	var out []Entry
	var total int64
	names := make([]string, 0, len(src.Config))
	for name := range src.Config {
		names = append(names, name)
	}
	sort.Strings(names)
	cdir := filepath.Join(dir, snap, ConfigDir)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, 0, err
	}
	for _, name := range names {
		rel := snap + "/" + ConfigDir + "/" + name
		if !safePath(rel) || strings.Contains(name, "/") {
			return nil, 0, fmt.Errorf("backup: configuration file name %q", name)
		}
		b, err := os.ReadFile(src.Config[name])
		if err != nil {
			return nil, 0, fmt.Errorf("reading the configuration file %s: %w", src.Config[name], err)
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(cdir, name), b, 0o600); err != nil {
			return nil, 0, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Entry{hex.EncodeToString(sum[:]), rel})
		total += int64(len(b))
	}
	return out, total, nil
}

// copyObjects copies the objects ids from the vault into the backup,
// skipping those the previous manifest lists with a file of the same size.
func copyObjects(ctx context.Context, vaultDir, dir string, ids []string, prev *Manifest, res *Result, progress func(Progress)) ([]Entry, error) {
	type job struct {
		id, src, dst string
		size         int64
	}
	jobs := make([]job, len(ids))
	var total int64
	for i, id := range ids {
		src := filepath.Join(vaultDir, "objects", id[:2], id+".age")
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("vault object %s, which the ledger names, cannot be read: %w; run custodian vault verify", id, err)
		}
		jobs[i] = job{id, src, filepath.Join(dir, filepath.FromSlash(ObjectPath(id))), fi.Size()}
		total += fi.Size()
	}
	p := Progress{ObjectsTotal: len(ids), BytesTotal: total}
	out := make([]Entry, 0, 2*len(ids))
	dirty := map[string]bool{}
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The object's key file (none for a legacy object): small, and
		// changed by a rotation, so compared by content every time.
		ksrc := filepath.Join(vaultDir, "keys", j.id[:2], j.id+".key")
		if _, err := os.Lstat(ksrc); err == nil {
			kdst := filepath.Join(dir, filepath.FromSlash(KeyPath(j.id)))
			a, err := hashFile(ksrc)
			if err != nil {
				return nil, fmt.Errorf("key file of vault object %s: %w", j.id, err)
			}
			if b, err := hashFile(kdst); err != nil || a != b {
				if err == nil {
					if err := overwrite(kdst); err != nil {
						return nil, err
					}
				}
				if a, err = CopyFile(ksrc, kdst, 0o600); err != nil {
					return nil, fmt.Errorf("copying the key file of vault object %s: %w", j.id, err)
				}
				dirty[filepath.Dir(kdst)] = true
			}
			out = append(out, Entry{a, KeyPath(j.id)})
		}
		rel := ObjectPath(j.id)
		sum, copied, err := copyObject(j.src, j.dst, j.size, prev, rel)
		if err != nil {
			return nil, fmt.Errorf("copying vault object %s: %w", j.id, err)
		}
		if copied {
			res.ObjectsCopied++
			res.BytesCopied += j.size
			dirty[filepath.Dir(j.dst)] = true
		} else {
			res.ObjectsPresent++
		}
		res.Objects++
		res.Bytes += j.size
		out = append(out, Entry{sum, rel})
		p.Objects++
		p.Bytes += j.size
		if progress != nil {
			progress(p)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirty)) {
		if err := fsutil.SyncDir(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyObject copies one object unless the backup already holds it: listed in
// the previous signed manifest with a file of the same size, or (after an
// interrupted backup) a file with the same SHA-256 as the vault's.
func copyObject(src, dst string, size int64, prev *Manifest, rel string) (sum string, copied bool, err error) {
	if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		if prev != nil {
			if s, ok := prev.Lookup(rel); ok {
				return s, false, nil
			}
		}
		a, err1 := hashFile(src)
		b, err2 := hashFile(dst)
		if err1 == nil && err2 == nil && a == b {
			return a, false, nil
		}
	}
	sum, err = CopyFile(src, dst, 0o600)
	return sum, true, err
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CopyFile copies src to dst (mode) through a temporary file in dst's
// directory (created 0700 if needed), fsynced and renamed into place, and
// returns the SHA-256 of what it wrote. The caller syncs dst's directory.
func CopyFile(src, dst string, mode fs.FileMode) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), in)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
