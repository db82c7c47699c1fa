package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"custodian/audit"
)

// Reading one remote file for receive, with as few round trips as the
// checks allow.
//
// Every file is read by its listed size, without the stat pkg/sftp's
// WriteTo sends first: the listing already gives the size. After the last
// byte, the path is stat'ed and the open handle fstat'ed in the same round
// trip, and receive compares both with the listing (ErrChanged): the bytes
// read are those of a file that had the listed size and time when it was
// opened, did not change while it was read, and is still the file at that
// path. That is the guarantee the single stat after reading gave before,
// and the fstat adds that the handle read was that file. Handles are
// closed without waiting for the server's answer.
//
//   - A small file (≤ smallFile bytes) is read whole into memory as soon as
//     its worker takes it, while the worker reads the sidecar: open, read,
//     stat ‖ fstat: three round trips, the sidecar's two in parallel.
//   - A larger file is opened while the sidecar is read, then read as
//     ranges over several sessions at once (multiread.go) into the
//     pipeline, within the Remote's memory budget.

// smallFile is the largest file read whole into memory before the pipeline.
// Files in flight × smallFile bounds that memory (16 × 256 KiB).
const smallFile = 256 << 10

// filesPerSession is how many files each session has in flight.
const filesPerSession = 2

// inflight is how many files one run reads at once.
func (r *Remote) inflight() int { return max(1, len(r.sessions)*filesPerSession) }

// remotes maps each open session to its Remote, so that receive, given one
// session, can read a large file over the others.
var remotes sync.Map // *sftp.Client → *Remote

func (r *Remote) register() {
	for _, s := range r.sessions {
		remotes.Store(s, r)
	}
}

func (r *Remote) unregister() {
	for _, s := range r.sessions {
		remotes.Delete(s)
	}
}

func remoteOf(s *sftp.Client) *Remote {
	if r, ok := remotes.Load(s); ok {
		return r.(*Remote)
	}
	return nil
}

// noteRemote tells what Dial noticed about the server (a session limit):
// in the log, and once per run on the ledger (source.session_limit).
func (j *jobRun) noteRemote(r *Remote) {
	for _, n := range r.Notes() {
		j.log.Warn().Str("source", j.job.Source).Msg(n)
		if !j.noted {
			j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvSourceSessionLimit, Job: j.job.Name,
				Details: map[string]string{"source": j.job.Source, "note": n,
					"sessions": strconv.Itoa(r.Sessions()), "connections": strconv.Itoa(r.Connections())}})
		}
	}
	if len(r.Notes()) > 0 {
		j.noted = true
	}
}

// prefetched is a small file read whole in the background.
type prefetched struct {
	path string
	done chan struct{}
	data []byte
	st   os.FileInfo
	err  error
	// A large file is only opened ahead: its handle and the open's time.
	large bool
	f     *sftp.File
	rtt   time.Duration
}

// prefetch starts reading c if it is small, or opening it if it is not,
// while the worker reads the sidecar; receive takes the result.
func (j *jobRun) prefetch(ctx context.Context, sess *sftp.Client, c *candidate) {
	c.pre = nil
	p := &prefetched{path: c.readPath, done: make(chan struct{})}
	if p.path == "" {
		p.path = c.remote
	}
	c.pre = p
	if c.size > smallFile || c.size < 0 {
		p.large = true
		go func() {
			defer close(p.done)
			t0 := time.Now()
			p.f, p.err = sess.Open(p.path)
			p.rtt = time.Since(t0)
			if p.err != nil {
				p.err = fmt.Errorf("opening %s: %w", p.path, p.err)
			}
		}()
		return
	}
	go func() {
		defer close(p.done)
		f, err := sess.Open(p.path)
		if err != nil {
			p.err = fmt.Errorf("opening %s: %w", p.path, err)
			return
		}
		defer closeLater(sess, f)
		buf := make([]byte, c.size)
		n, err := f.ReadAt(buf, 0)
		if errors.Is(err, io.EOF) {
			err = nil // shorter than listed: the count and the stat tell
		}
		p.data = buf[:n]
		if err != nil {
			p.err = err
			return
		}
		p.st, p.err = statAfter(sess, f, p.path)
	}()
}

// readFile writes the file c (at readPath) to w and returns the bytes
// written and the file's state after the last byte (see statAfter).
func (j *jobRun) readFile(ctx context.Context, sess *sftp.Client, c *candidate, readPath string, w io.Writer) (int64, os.FileInfo, error) {
	var f *sftp.File
	var rtt time.Duration
	if p := c.pre; p != nil && p.path == readPath {
		c.pre = nil
		select {
		case <-p.done:
		case <-ctx.Done():
			go func() { // the open may still answer
				<-p.done
				if p.f != nil {
					closeLater(sess, p.f)
				}
			}()
			return 0, nil, ctx.Err()
		}
		if p.err != nil {
			return 0, nil, p.err
		}
		if !p.large {
			if err := writePieces(w, p.data, defaultRanges.Piece); err != nil {
				return 0, nil, err
			}
			return int64(len(p.data)), p.st, nil
		}
		f, rtt = p.f, p.rtt // opened while the sidecar was read
	}
	if f == nil {
		t0 := time.Now()
		var err error
		if f, err = sess.Open(readPath); err != nil {
			return 0, nil, fmt.Errorf("opening %s: %w", readPath, err)
		}
		rtt = time.Since(t0)
	}
	defer closeLater(sess, f)

	remote := remoteOf(sess)
	o := defaultRanges
	o.RTT = rtt // one round trip, and the server's open
	handles := []io.ReaderAt{f}
	if remote != nil {
		// The window comes out of the Remote's memory budget, shared by
		// the files read at once.
		blocks := int64(min(o.Max, int((c.size+int64(o.Block)-1)/int64(o.Block))))
		want := max(1, blocks) * int64(o.Block)
		if err := remote.mem.Acquire(ctx, want); err != nil {
			return 0, nil, err
		}
		defer remote.mem.Release(want)
		o.Max = int(want / int64(o.Block))

		// More streams, each on the next session, as the window grows.
		var (
			mu     sync.Mutex
			opened []stream
			spare  = remote.streams(sess, len(remote.sessions))[1:]
		)
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			for _, st := range opened {
				closeLater(st.s, st.f)
			}
		}()
		o.More = func() (io.ReaderAt, bool) {
			mu.Lock()
			if len(spare) == 0 {
				mu.Unlock()
				return nil, false
			}
			s := spare[0]
			spare = spare[1:]
			mu.Unlock()
			h, err := s.Open(readPath)
			if err != nil {
				return nil, false
			}
			mu.Lock()
			opened = append(opened, stream{s, h})
			mu.Unlock()
			return h, true
		}
	}
	n, err := readRanges(ctx, handles, c.size, w, o)
	if err != nil {
		return n, nil, err
	}
	st, err := statAfter(sess, f, readPath)
	return n, st, err
}

// channelWindow is x/crypto/ssh's fixed receive window per channel.
const channelWindow = 2 << 20

type stream struct {
	s *sftp.Client
	f *sftp.File
}

// statAfter stats path and fstats f in one round trip. It returns the
// path's state, or the handle's if that differs (the file at the path was
// replaced), so that a comparison with the listing fails in both cases.
func statAfter(sess *sftp.Client, f *sftp.File, path string) (os.FileInfo, error) {
	var (
		fst  os.FileInfo
		ferr error
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		fst, ferr = f.Stat()
	}()
	st, err := sess.Stat(path)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("stat %s after transfer: %w", path, err)
	}
	if ferr == nil && (fst.Size() != st.Size() || !fst.ModTime().Equal(st.ModTime())) {
		return fst, nil
	}
	return st, nil
}

// closeLater closes a handle without waiting for the answer.
func closeLater(_ *sftp.Client, f *sftp.File) {
	go f.Close() // a dead connection fails it at once; the IO timeout bounds a stalled one
}

// readSidecar reads a small companion file whose listing is known: the
// listed size and one byte past it are asked at once, so a file that is
// still the listed size takes one round trip after the open; one that
// grew is read to its end.
func readSidecar(sess *sftp.Client, p string, listed os.FileInfo) ([]byte, error) {
	if listed == nil || listed.Size() > maxChecksumFile || listed.Size() <= 0 {
		return readSmall(sess, p)
	}
	f, err := sess.Open(p)
	if err != nil {
		return nil, err
	}
	defer closeLater(sess, f)
	buf := make([]byte, listed.Size())
	var (
		probe  [1]byte
		pn     int
		perr   error
		wg     sync.WaitGroup
		size   = listed.Size()
		n, rer = 0, error(nil)
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pn, perr = f.ReadAt(probe[:], size)
	}()
	n, rer = f.ReadAt(buf, 0)
	wg.Wait()
	if errors.Is(rer, io.EOF) {
		rer = nil
	}
	if rer != nil {
		return nil, rer
	}
	if pn == 0 && errors.Is(perr, io.EOF) || int64(n) < size {
		return buf[:n], nil // the whole file (it ended at or before the listed size)
	}
	if perr != nil && !errors.Is(perr, io.EOF) {
		return nil, perr
	}
	return readSmall(sess, p) // it grew: read it all
}
