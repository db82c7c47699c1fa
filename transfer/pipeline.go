package transfer

import (
	"io"
	"sync"
	"sync/atomic"
)

// pipeline is the single pass over a file's bytes. Write copies each chunk
// into a pooled buffer and hands it to two stages running on their own
// goroutines: the checkers (digests, record counter) and the encrypting
// object writer. Neither stage waits for the other, and the network reader
// goes on receiving while both work, so on two cores SSH decryption, hashing
// and encryption overlap instead of taking turns. At most depth chunks are in
// flight (backpressure), so memory stays flat whatever the file size, and the
// buffers are reused.
type pipeline struct {
	enc      io.Writer
	checkers []io.Writer
	toCheck  chan *chunk
	toEnc    chan *chunk
	wg       sync.WaitGroup
	n        atomic.Int64
	progress func(n int64)

	errMu sync.Mutex
	err   error // first error of the encrypting stage
}

// depth is the number of chunks in flight per stage.
const depth = 8

// chunks recycles chunk buffers across files, so a batch of small files
// does not allocate (and the GC clear) a new buffer per file.
var chunks sync.Pool

type chunk struct {
	b    []byte
	refs atomic.Int32
}

func newPipeline(enc io.Writer, checkers ...io.Writer) *pipeline {
	p := &pipeline{enc: enc, checkers: checkers, toCheck: make(chan *chunk, depth), toEnc: make(chan *chunk, depth)}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for c := range p.toCheck {
			for _, w := range p.checkers {
				w.Write(c.b) // digests and the counter never fail
			}
			p.release(c)
		}
	}()
	go func() {
		defer p.wg.Done()
		for c := range p.toEnc {
			if p.failed() == nil {
				if _, err := p.enc.Write(c.b); err != nil {
					p.fail(err)
				}
			}
			p.release(c)
		}
	}()
	return p
}

func (p *pipeline) failed() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

func (p *pipeline) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
}

func (p *pipeline) release(c *chunk) {
	if c.refs.Add(-1) == 0 {
		chunks.Put(c)
	}
}

// Write queues a copy of b for both stages. It fails as soon as the
// encrypting stage has failed, so the download stops early.
func (p *pipeline) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := p.failed(); err != nil {
		return 0, err
	}
	c, _ := chunks.Get().(*chunk)
	if c == nil || cap(c.b) < len(b) {
		c = &chunk{b: make([]byte, len(b), max(len(b), 256<<10))}
	}
	c.b = c.b[:len(b)]
	copy(c.b, b)
	c.refs.Store(2)
	p.toCheck <- c
	p.toEnc <- c
	total := p.n.Add(int64(len(b)))
	if p.progress != nil {
		p.progress(total)
	}
	return len(b), nil
}

// Close waits until both stages have taken every chunk and returns the
// encrypting stage's error, if any. The pipeline must not be written after.
func (p *pipeline) Close() error {
	close(p.toCheck)
	close(p.toEnc)
	p.wg.Wait()
	return p.failed()
}
