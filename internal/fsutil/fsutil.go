// Package fsutil holds the durable file operations custodian's packages
// share: writing a file so that a crash leaves either the old state or all of
// the new file, fsyncing directories, and creating private directories.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Errors of EnsureDir, meant to follow the path in a message.
var (
	ErrNotDir   = errors.New("exists and is not a directory")
	ErrNotEmpty = errors.New("is not empty")
)

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic writes data to path with permissions mode so that, after a
// crash, path either is as it was or holds all of data: it writes a
// temporary file in path's directory, fsyncs it, renames it into place and
// fsyncs the directory.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	return WriteFileAtomicVia(filepath.Dir(path), path, data, mode)
}

// WriteFileAtomicVia is WriteFileAtomic with the temporary file in tmpDir,
// which must be on the same file system as path, for a caller that removes
// leftovers of interrupted writes from a directory of its own. Both
// directories are fsynced.
func WriteFileAtomicVia(tmpDir, path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; error irrelevant on failure path
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err = SyncDir(dir); err != nil {
		return err
	}
	if filepath.Clean(tmpDir) == filepath.Clean(dir) {
		return nil
	}
	return SyncDir(tmpDir)
}

// EnsureDir creates directory path with permissions mode, or accepts an
// existing directory, which it chmods to mode, if it is empty or
// allowNonEmpty is set. A path that exists but is not a directory gives an
// error wrapping ErrNotDir, a non-empty directory one wrapping ErrNotEmpty;
// both messages read "PATH exists and is not a directory", "PATH is not
// empty". It does not fsync the parent: see SyncDir.
func EnsureDir(path string, mode fs.FileMode, allowNonEmpty bool) error {
	err := os.Mkdir(path, mode)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %w", path, ErrNotDir)
	}
	if !allowNonEmpty {
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("%s %w", path, ErrNotEmpty)
		}
	}
	return os.Chmod(path, mode)
}
