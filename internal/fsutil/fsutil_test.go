package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	for _, data := range []string{"first\n", "second, longer\n"} {
		if err := WriteFileAtomic(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
		if m := mode(t, path); m != 0o600 {
			t.Fatalf("mode %v, want 0600", m)
		}
	}
	// Chmod, not the umask, sets the mode.
	if err := WriteFileAtomic(filepath.Join(dir, "pub"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(dir, "pub")); m != 0o644 {
		t.Fatalf("mode %v, want 0644", m)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteFileAtomicVia(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "master.pub")
	if err := WriteFileAtomicVia(tmp, path, []byte("age1x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "age1x\n" {
		t.Fatalf("read %q", got)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("temporary files left in tmpDir: %v", entries)
	}
	// A failure leaves nothing behind: the target is a directory.
	if err := os.Mkdir(filepath.Join(dir, "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomicVia(tmp, filepath.Join(dir, "taken"), []byte("x"), 0o600); err == nil {
		t.Fatal("renaming over a directory succeeded")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("temporary file left after a failure: %v", entries)
	}
	if err := WriteFileAtomicVia(filepath.Join(dir, "missing"), path, nil, 0o600); err == nil {
		t.Fatal("missing tmpDir accepted")
	}
}

func TestEnsureDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "objects")
	if err := EnsureDir(p, 0o700, false); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p); m != fs.ModeDir|0o700 {
		t.Fatalf("mode %v", m)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDir(p, 0o700, false); err != nil {
		t.Fatalf("existing empty directory: %v", err)
	}
	if m := mode(t, p); m != fs.ModeDir|0o700 {
		t.Fatalf("existing directory not made 0700: %v", m)
	}
	if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := EnsureDir(p, 0o700, false)
	if !errors.Is(err, ErrNotEmpty) || err.Error() != p+" is not empty" {
		t.Fatalf("non-empty directory: %v", err)
	}
	if err := EnsureDir(p, 0o700, true); err != nil {
		t.Fatalf("non-empty directory allowed: %v", err)
	}
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDir(f, 0o700, true); !errors.Is(err, ErrNotDir) || err.Error() != f+" exists and is not a directory" {
		t.Fatalf("file: %v", err)
	}
	if err := EnsureDir(filepath.Join(dir, "a", "b"), 0o700, true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing parent: %v", err)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: %v", err)
	}
}
