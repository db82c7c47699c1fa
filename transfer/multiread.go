package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Ranged parallel reads with in-order reassembly.
//
// One SFTP session is one SSH channel, and x/crypto/ssh gives a channel a
// fixed 2 MiB receive window: over a wide area network one channel carries
// at most 2 MiB per round trip (67 MB/s at 30 ms), however fast the link.
// readRanges reads a file of known size as fixed-size ranges over several
// handles, each opened on its own session (and so its own window, spread
// over the source's connections), and writes the ranges in order to the
// single streaming pass (the pipeline: digests, record count, encryption).
//
// Memory is bounded: at most window ranges are read or waiting at once,
// and the window never exceeds rangeOptions.Max. The window is adaptive:
// it starts at two ranges and grows by half each time the writer
// waits for a range already requested (the network, not the pipeline, is
// the bottleneck), as long as it is below four times the measured
// bandwidth-delay product: the rate delivered recently times the round trip
// measured when the file was opened. On loopback that product is tiny and the window stays small; at
// 30 ms it doubles about once per round trip, like TCP's slow start, until
// the link or the pipeline is the limit. Streams follow the window: another
// handle is opened, on the next session, whenever the window outgrows the
// channels' windows (PerStream ranges each), so a fast local path uses one
// or two channels and a long one as many as it needs.

// rangeOptions shapes one ranged read.
type rangeOptions struct {
	Block     int // bytes per range
	Initial   int // ranges in flight at the start
	Max       int // ranges in flight at most (memory: Max × Block)
	PerHandle int // ranges read at once on one handle
	// Piece is the largest write to w (the pipeline copies each write into
	// one pooled chunk); 0 writes whole ranges.
	Piece int
	// RTT is the path's round trip (0: unknown, the window grows whenever
	// the network is the bottleneck, up to Max).
	RTT time.Duration
	// PerStream is how many ranges one handle's channel carries at once
	// (its flow-control window); More, if set, opens another handle, and
	// is called when the window exceeds PerStream × handles.
	PerStream int
	More      func() (io.ReaderAt, bool)
}

const (
	rangeBlock = 1 << 20
	// memBudget bounds the file bytes one Remote holds at once: ranged
	// reads' windows and small files read whole. With the pipeline's
	// chunks and the SSH channel buffers it keeps the daemon under 64 MiB.
	memBudget = 16 << 20
	// rangeMax is one file's largest window, in ranges.
	rangeMax = memBudget / rangeBlock
)

var defaultRanges = rangeOptions{Block: rangeBlock, Initial: 2, Max: rangeMax, PerHandle: 2, Piece: 256 << 10, PerStream: 1}

// rangeBufs recycles range buffers across files.
var rangeBufs = sync.Pool{New: func() any { b := make([]byte, rangeBlock); return &b }}

func getRangeBuf(n int) *[]byte {
	if n == rangeBlock {
		return rangeBufs.Get().(*[]byte)
	}
	b := make([]byte, n)
	return &b
}

func putRangeBuf(b *[]byte) {
	if cap(*b) == rangeBlock {
		*b = (*b)[:rangeBlock]
		rangeBufs.Put(b)
	}
}

// rangeError is a failed range: which bytes, and why.
type rangeError struct {
	Off, Len int64
	Err      error
}

func (e *rangeError) Error() string {
	return fmt.Sprintf("reading bytes %d–%d: %v", e.Off, e.Off+e.Len, e.Err)
}

func (e *rangeError) Unwrap() error { return e.Err }

// readRanges reads size bytes from handles (all of the same file) and
// writes them to w in order. It returns the bytes written. A file that
// ends early is not an error here: the bytes up to its end are written
// and the count says how many (the caller compares it with the listing).
// A failed range, a failed write or the end of ctx stops every reader and
// is returned. On return no reader is still running.
func readRanges(ctx context.Context, handles []io.ReaderAt, size int64, w io.Writer, o rangeOptions) (int64, error) {
	if size <= 0 || len(handles) == 0 {
		return 0, nil
	}
	block := int64(o.Block)
	nblocks := int((size + block - 1) / block)
	o.Max = max(1, min(o.Max, nblocks))
	o.Initial = max(1, min(o.Initial, o.Max))
	o.PerHandle = max(1, o.PerHandle)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		next    int // next range to request
		emitted int // next range to write
		window  = o.Initial
		ready   = map[int]*[]byte{}
		failed  error
		endAt   = nblocks // the first range that came back short (end of file), else nblocks
		wg      sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()

	var reader func(h io.ReaderAt)
	reader = func(h io.ReaderAt) {
		defer wg.Done()
		for {
			mu.Lock()
			for failed == nil && ctx.Err() == nil && next < endAt && next-emitted >= window {
				cond.Wait()
			}
			if failed != nil || ctx.Err() != nil || next >= endAt {
				mu.Unlock()
				return
			}
			i := next
			next++
			mu.Unlock()

			off := int64(i) * block
			want := min(block, size-off)
			buf := getRangeBuf(int(want))
			n, err := h.ReadAt((*buf)[:want], off)
			short := false
			if errors.Is(err, io.EOF) {
				err, short = nil, int64(n) < want
			}
			mu.Lock()
			switch {
			case err != nil:
				if failed == nil {
					failed = &rangeError{Off: off, Len: want, Err: err}
				}
				putRangeBuf(buf)
			default:
				*buf = (*buf)[:n]
				ready[i] = buf
				if short && i+1 < endAt {
					endAt = i + 1 // the file ends in this range
				}
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}
	// As many streams as the initial window needs.
	for o.More != nil && o.PerStream > 0 && o.Initial > len(handles)*o.PerStream {
		h, ok := o.More()
		if !ok {
			break
		}
		handles = append(handles, h)
	}
	for _, h := range handles {
		for k := 0; k < o.PerHandle; k++ {
			wg.Add(1)
			go reader(h)
		}
	}
	finish := func() {
		cancel()
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
		wg.Wait()
		for i, b := range ready {
			putRangeBuf(b)
			delete(ready, i)
		}
	}

	var written int64
	start := time.Now()
	streams, opening := len(handles), false // handles includes the initial streams
	// grow widens the window by one range if the path can use it, and
	// opens another stream when the channels are full. Called with mu held.
	var sampleAt time.Time
	var sampleBytes int64
	rate := 0.0 // bytes per second, over the last sample interval
	grow := func() {
		if window >= o.Max {
			return
		}
		if o.RTT > 0 {
			now := time.Now()
			if sampleAt.IsZero() {
				sampleAt = start
			}
			if el := now.Sub(sampleAt); el >= max(4*o.RTT, 50*time.Millisecond) {
				rate = float64(written-sampleBytes) / el.Seconds()
				sampleAt, sampleBytes = now, written
			}
			avg := float64(written) / max(now.Sub(start).Seconds(), o.RTT.Seconds())
			bdp := max(rate, avg) * o.RTT.Seconds()
			// Below 4 × the product, more in flight can still raise the
			// rate (the channels' own windows and the server's turns make
			// the delivered rate lag the window); above it, it cannot.
			if float64(window*o.Block) >= 4*bdp+float64(2*o.Block) {
				return
			}
		}
		// The network is the bottleneck: more in flight, by half.
		window = min(o.Max, window+max(1, window/2))
		cond.Broadcast()
		if o.More != nil && o.PerStream > 0 && !opening && window > streams*o.PerStream {
			opening = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, ok := o.More()
				mu.Lock()
				opening = false
				if ok {
					streams++
					if ctx.Err() == nil && failed == nil {
						for k := 0; k < o.PerHandle; k++ {
							wg.Add(1)
							go reader(h)
						}
					}
				}
				mu.Unlock()
			}()
		}
	}
	for {
		mu.Lock()
		for ready[emitted] == nil && failed == nil && ctx.Err() == nil && emitted < endAt {
			if next > emitted && next < endAt {
				// Waiting for a range already requested: the network is
				// the bottleneck (the slot just emitted is being taken).
				grow()
			}
			cond.Wait()
		}
		if failed != nil || ctx.Err() != nil || emitted >= endAt {
			err := failed
			if err == nil {
				err = ctx.Err()
			}
			mu.Unlock()
			finish()
			return written, err
		}
		buf := ready[emitted]
		delete(ready, emitted)
		mu.Unlock()

		err := writePieces(w, *buf, o.Piece)
		written += int64(len(*buf))
		putRangeBuf(buf)
		mu.Lock()
		emitted++
		cond.Broadcast()
		mu.Unlock()
		if err != nil {
			finish()
			return written, err
		}
	}
}

// writePieces writes b to w in pieces of at most piece bytes (0: at once).
func writePieces(w io.Writer, b []byte, piece int) error {
	for len(b) > 0 {
		n := len(b)
		if piece > 0 {
			n = min(n, piece)
		}
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
