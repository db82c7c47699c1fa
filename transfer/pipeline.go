package transfer

import (
	"io"
	"sync/atomic"
)

// pipeline is the single pass over a file's bytes. Each chunk goes to the
// checkers (digests, record counter) on a helper goroutine while the caller's
// goroutine encrypts it, so hashing and encryption use two cores; Write returns
// when both are done with the chunk, so the caller may reuse its buffer and
// memory never grows with the file.
type pipeline struct {
	enc      io.Writer
	checkers []io.Writer
	work     chan []byte
	done     chan struct{}
	n        atomic.Int64
	progress func(n int64)
}

func newPipeline(enc io.Writer, checkers ...io.Writer) *pipeline {
	p := &pipeline{enc: enc, checkers: checkers, work: make(chan []byte), done: make(chan struct{})}
	go func() {
		for b := range p.work {
			for _, c := range p.checkers {
				c.Write(b) // digests and the counter never fail
			}
			p.done <- struct{}{}
		}
	}()
	return p
}

func (p *pipeline) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.work <- b
	n, err := p.enc.Write(b)
	<-p.done
	if n < len(b) && err == nil {
		err = io.ErrShortWrite
	}
	total := p.n.Add(int64(n))
	if p.progress != nil {
		p.progress(total)
	}
	return n, err
}

// Written is the number of bytes that passed through.
func (p *pipeline) Written() int64 { return p.n.Load() }

// Close stops the helper goroutine. The pipeline must not be written after.
func (p *pipeline) Close() { close(p.work) }
