package vault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint16(1))
	f.Add([]byte("x"), uint16(0))
	f.Add([]byte("household registry row;with;fields\n"), uint16(7))
	f.Add(bytes.Repeat([]byte{0}, 64<<10), uint16(4096))
	f.Add(bytes.Repeat([]byte("ab"), 64<<10), uint16(65535))
	f.Add(bytes.Repeat([]byte{0xff}, 64<<10+1), uint16(3))

	v, ident := newTestVaultAt(f, fastTempDir(f))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		w, err := v.Create(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		step := max(int(chunk), 1)
		for rest := data; len(rest) > 0; {
			n := min(step, len(rest))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		defer v.Remove(info.ID)
		if info.PlainSize != int64(len(data)) {
			t.Fatalf("PlainSize %d, want %d", info.PlainSize, len(data))
		}
		got, err := load(v, info.ID, ident)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip mismatch: %d bytes in, %d out", len(data), len(got))
		}
	})
}

// fastTempDir returns a temporary directory on tmpfs when one is available, so
// that the fsyncs in Commit do not limit fuzzing to a few executions per
// second. It falls back to tb.TempDir.
func fastTempDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "vault-fuzz-")
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FuzzOpenGarbage stores arbitrary bytes as an object file and checks that
// reading it never panics and fails with ErrCorrupt or ErrWrongIdentity
// unless the input is a genuine object.
func FuzzOpenGarbage(f *testing.F) {
	v, ident := newTestVault(f)
	valid := store(f, v, []byte("seed plaintext"))
	path, _ := v.Path(valid.ID)
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Add([]byte("age-encryption.org/v1\n"))
	f.Add([]byte("age-encryption.org/v1\n-> X25519 \n\n--- \n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := v.Open(valid.ID, ident)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
			r.Close()
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongIdentity) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if err == nil && !bytes.Equal(content, seed) {
			t.Logf("accepted a different valid encoding (%d bytes)", len(content))
		}
	})
}
