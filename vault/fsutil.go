package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"custodian/internal/fsutil"
)

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(path string) error {
	if err := fsutil.SyncDir(path); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to dst with the given permissions so that, after
// a crash, dst either does not exist or holds all of data. The temporary file
// is created in tmpDir, which must be on the same file system as dst; a
// leftover temporary is removed by Recover.
func writeFileAtomic(tmpDir, dst string, data []byte, perm fs.FileMode) error {
	if err := fsutil.WriteFileAtomicVia(tmpDir, dst, data, perm); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
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
