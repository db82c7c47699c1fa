package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("vault: open dir for sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vault: sync dir %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes data to dst with the given permissions so that, after
// a crash, dst either does not exist or holds all of data. The temporary file
// is created in tmpDir, which must be on the same file system as dst; a
// leftover temporary is removed by Recover.
func writeFileAtomic(tmpDir, dst string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return fmt.Errorf("vault: create temp file for %s: %w", dst, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; error irrelevant on failure path
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("vault: chmod %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("vault: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("vault: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("vault: close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("vault: rename %s: %w", dst, err)
	}
	if err = syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	return syncDir(tmpDir)
}

// checkMode verifies that path exists, has the expected type (it is not
// followed if it is a symlink) and that none of the permission bits in
// forbidden are set.
func checkMode(path string, wantDir bool, forbidden fs.FileMode) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is missing", ErrNotVault, path)
	}
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	switch {
	case wantDir && !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory (found %s)", ErrNotVault, path, fi.Mode().Type())
	case !wantDir && !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (found %s)", ErrNotVault, path, fi.Mode().Type())
	}
	return checkPerm(path, fi.Mode(), forbidden)
}

// checkPerm returns ErrPermissions, with the fix, if any bit of forbidden is
// set in mode.
func checkPerm(path string, mode, forbidden fs.FileMode) error {
	perm := mode.Perm()
	if perm&forbidden == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s has mode %04o, but permission bits %04o must be clear; fix with: chmod %04o %s",
		ErrPermissions, path, perm, forbidden, perm&^forbidden, path)
}
