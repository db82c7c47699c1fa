package transfer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/pkg/sftp"

	"custodian/audit"
	"custodian/transfer/integrity"
)

const maxChecksumFile = 16 << 20

// sidecarSuffixes are the sidecar names looked for next to a data file, in
// order: integrity's one list (.sha256, .sha512, .md5).
var sidecarSuffixes = integrity.SidecarSuffixes()

// checksumReadError classifies a failure to read a sidecar or manifest: one
// that vanished or is too large is a verdict for this run (ErrChecksumFile);
// anything else, such as a dropped connection, is a transfer fault to retry.
func checksumReadError(what string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, errTooLarge) {
		return fmt.Errorf("%w: reading %s: %v", ErrChecksumFile, what, err)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

var errTooLarge = errors.New("too large for a checksum file")

func readSmall(sess *sftp.Client, p string) ([]byte, error) {
	f, err := sess.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxChecksumFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxChecksumFile {
		return nil, fmt.Errorf("%s: %w (over %d bytes)", p, errTooLarge, maxChecksumFile)
	}
	return b, nil
}

// expectations fills in what the provider declared for c.
func (j *jobRun) expectations(sess *sftp.Client, c *candidate, names map[string]os.FileInfo, manifests map[string]integrity.ManifestEntry) error {
	switch j.job.Checksum {
	case "none":
		c.exp.Unchecked = true
		c.exp.Algo = integrity.Algo("sha256")
		return nil
	case "manifest":
		e, ok := manifests[c.name]
		if !ok {
			return nil // reported by checkBatch
		}
		c.exp.Algo, c.exp.Digest, c.exp.Size, c.exp.Records = e.Algo, e.Digest, e.Size, e.Records
		return nil
	}
	for _, suf := range sidecarSuffixes {
		if _, ok := names[c.name+suf]; !ok {
			continue
		}
		algo, _ := integrity.AlgoForSidecar(c.name + suf)
		if algo.Weak() && !j.job.AllowWeak {
			continue
		}
		content, err := readSidecar(sess, path.Join(j.job.RemoteDir, c.name+suf), names[c.name+suf])
		if err != nil {
			return checksumReadError(c.name+suf, err)
		}
		d, err := integrity.ParseSidecar(content, algo, c.name)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrChecksumFile, c.name+suf, err)
		}
		c.exp.Algo, c.exp.Digest, c.sidecar = algo, d, names[c.name+suf]
		return nil
	}
	accepted := c.name + ".sha256 or " + c.name + ".sha512"
	if j.job.AllowWeak {
		accepted += " or " + c.name + ".md5"
	}
	return fmt.Errorf("%w: no sidecar for %s (looked for %s)", ErrChecksumFile, c.name, accepted)
}

func (j *jobRun) readManifests(sess *sftp.Client, names map[string]os.FileInfo) (map[string]integrity.ManifestEntry, error) {
	if j.job.Checksum != "manifest" {
		return nil, nil
	}
	out := map[string]integrity.ManifestEntry{}
	var found []string
	for name := range names {
		if ok, _ := path.Match(j.job.Manifest, name); ok {
			found = append(found, name)
		}
	}
	sort.Strings(found)
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: no manifest matching %q in %s", ErrChecksumFile, j.job.Manifest, j.job.RemoteDir)
	}
	for _, m := range found {
		content, err := readSmall(sess, path.Join(j.job.RemoteDir, m))
		if err != nil {
			return nil, checksumReadError("manifest "+m, err)
		}
		entries, err := integrity.ParseManifest(content, integrity.Algo("sha256"))
		if err != nil {
			return nil, fmt.Errorf("%w: manifest %s: %v", ErrChecksumFile, m, err)
		}
		for _, e := range entries {
			if _, dup := out[e.Name]; dup {
				return nil, fmt.Errorf("%w: %s is listed in more than one manifest", ErrChecksumFile, e.Name)
			}
			out[e.Name] = e
		}
	}
	return out, nil
}

// declaredDigest is the digest the provider now declares for name: from the
// manifest, or from the sidecar, which is read again only if its listing
// differs from the one recorded with d.
func (j *jobRun) declaredDigest(sess *sftp.Client, name string, d audit.Dataset, names map[string]os.FileInfo, manifests map[string]integrity.ManifestEntry) (integrity.Algo, string, error) {
	switch j.job.Checksum {
	case "manifest":
		if e, ok := manifests[name]; ok {
			return e.Algo, e.Digest, nil
		}
		return "", "", nil
	case "sidecar":
	default:
		return "", "", nil
	}
	c := &candidate{name: name}
	for _, suf := range sidecarSuffixes {
		sc, ok := names[name+suf]
		if !ok {
			continue
		}
		// Listings give times in whole seconds: a sidecar rewritten within
		// the second it was listed looks unchanged, so the listing is
		// trusted only for a sidecar that was older than that.
		settled := sc.ModTime().Add(listingGrain).Before(d.ReceivedAt)
		if settled && d.Integrity[integrity.KeySidecar] == sc.Name() && d.Integrity[integrity.KeySidecarSize] == strconv.FormatInt(sc.Size(), 10) &&
			d.Integrity[integrity.KeySidecarMtime] == sc.ModTime().UTC().Format(time.RFC3339Nano) {
			return integrity.Algo(d.Integrity[integrity.KeyDigestAlgo]), d.Integrity[integrity.KeyDeclaredDigest], nil
		}
		break
	}
	if err := j.expectations(sess, c, names, manifests); err != nil {
		if errors.Is(err, ErrChecksumFile) {
			return "", "", nil // no usable sidecar now: judged by size and time
		}
		return "", "", err
	}
	return c.exp.Algo, c.exp.Digest, nil
}
