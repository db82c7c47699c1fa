package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowReader is one handle on a file in memory: each ReadAt waits a random
// moment, so ranges complete out of order; hook may change the result.
type slowReader struct {
	data     []byte
	jitter   time.Duration
	inflight *atomic.Int64
	peak     *atomic.Int64
	hook     func(off int64, n int, err error) (int, error)
}

func (r *slowReader) ReadAt(p []byte, off int64) (int, error) {
	if r.inflight != nil {
		v := r.inflight.Add(1)
		for {
			old := r.peak.Load()
			if v <= old || r.peak.CompareAndSwap(old, v) {
				break
			}
		}
		defer r.inflight.Add(-1)
	}
	if r.jitter > 0 {
		time.Sleep(time.Duration(mrand.Int64N(int64(r.jitter))))
	}
	var n int
	var err error
	if off >= int64(len(r.data)) {
		err = io.EOF
	} else {
		n = copy(p, r.data[off:])
		if n < len(p) {
			err = io.EOF
		}
	}
	if r.hook != nil {
		return r.hook(off, n, err)
	}
	return n, err
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func handlesOn(data []byte, n int, jitter time.Duration, hook func(off int64, n int, err error) (int, error)) ([]io.ReaderAt, *atomic.Int64) {
	var inflight, peak atomic.Int64
	hs := make([]io.ReaderAt, n)
	for i := range hs {
		hs[i] = &slowReader{data: data, jitter: jitter, inflight: &inflight, peak: &peak, hook: hook}
	}
	return hs, &peak
}

// orderedWriter records what it is given and fails if a write is too big.
type orderedWriter struct {
	bytes.Buffer
	maxWrite int
}

func (w *orderedWriter) Write(p []byte) (int, error) {
	w.maxWrite = max(w.maxWrite, len(p))
	return w.Buffer.Write(p)
}

var testRanges = rangeOptions{Block: 4096, Initial: 2, Max: 8, PerHandle: 3, Piece: 1000}

func TestReadRangesOutOfOrder(t *testing.T) {
	for _, size := range []int{1, 4095, 4096, 4097, 100_000, 4096 * 20} {
		data := randomBytes(t, size)
		hs, peak := handlesOn(data, 4, 2*time.Millisecond, nil)
		var w orderedWriter
		n, err := readRanges(t.Context(), hs, int64(size), &w, testRanges)
		if err != nil || n != int64(size) {
			t.Fatalf("size %d: n %d, err %v", size, n, err)
		}
		if !bytes.Equal(w.Bytes(), data) {
			t.Fatalf("size %d: reassembled bytes differ", size)
		}
		if w.maxWrite > testRanges.Piece {
			t.Fatalf("size %d: a write of %d bytes, over the piece size", size, w.maxWrite)
		}
		if p := peak.Load(); p > int64(testRanges.Max) {
			t.Fatalf("size %d: %d ranges in flight, over the window's maximum %d", size, p, testRanges.Max)
		}
	}
}

// TestReadRangesWindowGrows: a pipeline that never waits sees the window
// grow to its maximum when the network is the bottleneck, never beyond.
func TestReadRangesWindowGrows(t *testing.T) {
	data := randomBytes(t, 4096*64)
	hs, peak := handlesOn(data, 8, 3*time.Millisecond, nil)
	var w orderedWriter
	if _, err := readRanges(t.Context(), hs, int64(len(data)), &w, testRanges); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p <= int64(testRanges.Initial) || p > int64(testRanges.Max) {
		t.Fatalf("peak ranges in flight %d; want above the initial %d and at most %d", p, testRanges.Initial, testRanges.Max)
	}
	if !bytes.Equal(w.Bytes(), data) {
		t.Fatal("reassembled bytes differ")
	}
}

func TestReadRangesFailedRange(t *testing.T) {
	data := randomBytes(t, 4096*30)
	boom := errors.New("boom")
	hs, _ := handlesOn(data, 3, time.Millisecond, func(off int64, n int, err error) (int, error) {
		if off == 4096*17 {
			return 0, boom
		}
		return n, err
	})
	var w orderedWriter
	n, err := readRanges(t.Context(), hs, int64(len(data)), &w, testRanges)
	var re *rangeError
	if !errors.Is(err, boom) || !errors.As(err, &re) || re.Off != 4096*17 {
		t.Fatalf("want the failed range's error, got %v", err)
	}
	if n > 4096*17 || !bytes.Equal(w.Bytes(), data[:n]) {
		t.Fatalf("wrote %d bytes; want an in-order prefix before the failed range", n)
	}
}

// TestReadRangesShortFile: a file shorter than listed yields its bytes and
// a smaller count, not an error (the caller's size check decides).
func TestReadRangesShortFile(t *testing.T) {
	data := randomBytes(t, 4096*10+123)
	hs, _ := handlesOn(data, 3, time.Millisecond, nil)
	var w orderedWriter
	n, err := readRanges(t.Context(), hs, int64(len(data))+50_000, &w, testRanges)
	if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
		t.Fatalf("n %d (want %d), err %v", n, len(data), err)
	}
}

func TestReadRangesWriteFails(t *testing.T) {
	data := randomBytes(t, 4096*20)
	hs, _ := handlesOn(data, 2, 0, nil)
	bad := errors.New("disk full")
	n, err := readRanges(t.Context(), hs, int64(len(data)), rangeFailWriter{err: bad}, testRanges)
	if !errors.Is(err, bad) || n > 4096 {
		t.Fatalf("n %d, err %v; want the write error at the first range", n, err)
	}
}

type rangeFailWriter struct{ err error }

func (w rangeFailWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		return 0, w.err
	}
	return 0, nil
}

// TestReadRangesCancel: cancelling stops every reader and returns promptly
// with the context's error, even while reads hang.
func TestReadRangesCancel(t *testing.T) {
	data := randomBytes(t, 4096*40)
	release := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(t.Context())
	hs, _ := handlesOn(data, 3, 0, func(off int64, n int, err error) (int, error) {
		if off >= 4096*5 {
			once.Do(cancel)
			<-release // a read that hangs until the test ends it
		}
		return n, err
	})
	done := make(chan struct{})
	var n int64
	var err error
	go func() {
		defer close(done)
		var w orderedWriter
		n, err = readRanges(ctx, hs, int64(len(data)), &w, testRanges)
	}()
	// readRanges waits for its readers: let the hanging ones go.
	<-ctx.Done()
	close(release)
	<-done
	if !errors.Is(err, context.Canceled) || n > 4096*5 {
		t.Fatalf("n %d, err %v", n, err)
	}
}
