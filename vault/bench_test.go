package vault

import (
	"context"
	"io"
	"testing"
)

const (
	benchStreamSize = 64 << 20
	benchChunkSize  = 256 << 10
)

// writeStream writes benchStreamSize bytes in benchChunkSize pieces.
func writeStream(b *testing.B, w *Writer, chunk []byte) {
	for n := 0; n < benchStreamSize; n += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncrypt measures the encryption path: age encryption plus buffered
// writes of the ciphertext to the temp file. The object is aborted, so the
// figure excludes the fsync in Commit, which measures the disk, not the CPU.
func BenchmarkEncrypt(b *testing.B) {
	v, _ := newTestVault(b)
	chunk := randBytes(b, benchChunkSize)
	b.SetBytes(benchStreamSize)
	for b.Loop() {
		w, err := v.Create(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		writeStream(b, w, chunk)
		if err := w.Abort(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptCommit is BenchmarkEncrypt including the durable Commit.
func BenchmarkEncryptCommit(b *testing.B) {
	v, _ := newTestVault(b)
	chunk := randBytes(b, benchChunkSize)
	b.SetBytes(benchStreamSize)
	for b.Loop() {
		w, err := v.Create(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		writeStream(b, w, chunk)
		info, err := w.Commit()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := v.Remove(info.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkDecrypt(b *testing.B) {
	v, ident := newTestVault(b)
	chunk := randBytes(b, benchChunkSize)
	w, err := v.Create(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	writeStream(b, w, chunk)
	info, err := w.Commit()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchChunkSize)
	b.SetBytes(benchStreamSize)
	for b.Loop() {
		r, err := v.Open(info.ID, ident)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
