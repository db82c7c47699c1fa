package vault

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"filippo.io/age"
	"golang.org/x/sys/unix"
)

// writeBufferSize is the size of the buffer between age and the temp file,
// so that write syscalls carry several 64 KiB age chunks at a time.
const writeBufferSize = 256 << 10

// ObjectInfo describes a committed object.
type ObjectInfo struct {
	ID         string
	CipherSize int64 // bytes on disk
	PlainSize  int64 // bytes written by the caller
}

type writerState int

const (
	stateOpen writerState = iota
	stateCommitted
	stateAborted
	stateFailed
)

// Writer streams plaintext into a new encrypted object. Only ciphertext
// reaches the disk, in tmp/<id>.partial, until Commit moves it into objects/.
// A Writer must be finished with Commit or Abort; calling Abort in a defer
// after a successful Commit is a harmless no-op. A Writer is not safe for
// concurrent use.
//
// If Write or Commit fails, the temp file is removed immediately and every
// later Write or Commit returns the same error.
type Writer struct {
	v       *Vault
	ctx     context.Context
	id      string
	tmpName string // file name within tmp/
	tmpPath string

	key   *objectKey // the object's own key; wiped when the writer ends
	f     *os.File
	cw    countingWriter
	bw    *bufio.Writer
	aw    io.WriteCloser
	plain int64

	state writerState
	err   error // set in stateFailed
}

// countingWriter counts the bytes written to the file.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// newID returns a random object ID.
func newID() (string, error) {
	var b [idLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vault: generate object id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Create starts a new object encrypted to a fresh key of its own, which
// Commit (or Close) stores in keys/, wrapped to the vault's master key
// (the public key is all a writer needs). If ctx is canceled before
// Commit, Write and Commit fail with the context's error and the object is
// discarded.
func (v *Vault) Create(ctx context.Context) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vault: create: %w", err)
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	w := &Writer{
		v:       v,
		ctx:     ctx,
		id:      id,
		tmpName: id + partialExt,
	}
	w.tmpPath = filepath.Join(v.dir, tmpDir, w.tmpName)
	if w.key, err = newObjectKey(); err != nil {
		return nil, err
	}

	// Register before the file exists so a concurrent Recover never deletes it.
	v.mu.Lock()
	v.live[w.tmpName] = struct{}{}
	v.mu.Unlock()

	f, err := os.OpenFile(w.tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		w.retire()
		return nil, fmt.Errorf("vault: create: %w", err)
	}
	w.f = f
	w.cw.w = f
	w.bw = writeBuffers.Get().(*bufio.Writer)
	w.bw.Reset(&w.cw)
	w.aw, err = age.Encrypt(w.bw, w.key.id.Recipient())
	if err != nil {
		w.fail(fmt.Errorf("vault: create %s: %w", id, err))
		return nil, w.err
	}
	return w, nil
}

// ID returns the object ID, which is fixed when the Writer is created.
func (w *Writer) ID() string { return w.id }

// Write encrypts p into the object.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	if err := w.ctx.Err(); err != nil {
		w.fail(fmt.Errorf("vault: write %s: %w", w.id, err))
		return 0, w.err
	}
	n, err := w.aw.Write(p)
	w.plain += int64(n)
	if err != nil {
		w.fail(fmt.Errorf("vault: write %s: %w", w.id, err))
		return n, w.err
	}
	return n, nil
}

// Preallocate reserves disk space for an object of plainSize plaintext
// bytes. It is an optimisation only: with the blocks allocated up front the
// kernel's write path does far less work per byte (about a quarter of the
// CPU on ext4). Filesystems without fallocate are fine; the file size is
// unchanged.
func (w *Writer) Preallocate(plainSize int64) error {
	if err := w.usable(); err != nil {
		return err
	}
	if plainSize <= 0 {
		return nil
	}
	// age: header (< 512 bytes with one X25519 recipient), 16-byte nonce, and
	// a 16-byte tag per 64 KiB chunk.
	size := plainSize + 16*(plainSize/(64<<10)+1) + 16 + 512
	err := unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("vault: preallocate %s: %w", w.id, err)
	}
	return nil
}

// Commit finishes the object and makes it durable: it flushes and fsyncs the
// ciphertext, renames it into objects/, and fsyncs the directories involved.
// On error the object does not exist and the temp file has been removed.
func (w *Writer) Commit() (ObjectInfo, error) {
	return w.finish(true)
}

// Close finishes the object like Commit but leaves durability to
// Vault.Flush: the ciphertext is flushed, closed and renamed into objects/
// without any fsync. The object must not be referenced anywhere durable
// (the ledger) before a Flush that started after Close returned; if the
// host crashes first, the object may be incomplete, and as nothing refers
// to it, the daemon removes it as an orphan on restart. Many writers closing
// and then sharing one Flush cost one journal commit instead of two fsyncs
// each.
func (w *Writer) Close() (ObjectInfo, error) {
	return w.finish(false)
}

func (w *Writer) finish(durable bool) (ObjectInfo, error) {
	if err := w.usable(); err != nil {
		return ObjectInfo{}, err
	}
	if err := w.commit(durable); err != nil {
		w.fail(fmt.Errorf("vault: commit %s: %w", w.id, err))
		return ObjectInfo{}, w.err
	}
	w.state = stateCommitted
	w.retire()
	return ObjectInfo{ID: w.id, CipherSize: w.cw.n, PlainSize: w.plain}, nil
}

func (w *Writer) commit(durable bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if err := w.aw.Close(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if durable {
		if err := w.f.Sync(); err != nil {
			return err
		}
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return err
	}

	// The key file goes first, wrapped to the master key in force now
	// (rot held so that a rotation sees either both files or neither): an
	// object in objects/ always has its key, and a key without its object
	// (a crash here) is set aside at the next start like any orphan.
	w.v.rot.RLock()
	defer w.v.rot.RUnlock()
	wrapped, err := wrapKey(w.key, w.v.recipient)
	if err != nil {
		return err
	}
	if err := w.v.writeKeyFile(w.id, wrapped, durable); err != nil {
		return err
	}
	keyWritten := true
	defer func() {
		if keyWritten {
			_ = eraseFile(w.v.keyPath(w.id))
		}
	}()

	objects := filepath.Join(w.v.dir, objectsDir)
	sub := filepath.Join(objects, w.id[:2])
	switch err := os.Mkdir(sub, 0o700); {
	case err == nil:
		if durable {
			if err := syncDir(objects); err != nil {
				return err
			}
		}
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	final := w.v.objectPath(w.id)
	if err := os.Rename(w.tmpPath, final); err != nil {
		return err
	}
	if !durable {
		keyWritten = false
		return nil
	}
	// Only the destination directory is synced: it makes the new name
	// durable. The old name's removal from tmp/ needs no sync of its own
	// (syncing tmp/ would stall every writer creating files there); if a
	// crash brought it back, Recover deletes it, which only drops a link.
	if err := syncDir(sub); err != nil {
		// Whether the rename survives a crash is unknown; do not leave an
		// object the caller is told was never written.
		_ = os.Remove(final)
		return err
	}
	keyWritten = false
	return nil
}

// Abort discards the object and removes its temp file. It is idempotent and
// a no-op after Commit or after a failed Write or Commit.
func (w *Writer) Abort() error {
	if w.state != stateOpen {
		return nil
	}
	w.state = stateAborted
	return w.cleanup()
}

func (w *Writer) usable() error {
	switch w.state {
	case stateOpen:
		return nil
	case stateFailed:
		return w.err
	default:
		return fmt.Errorf("%w: writer for %s", ErrClosed, w.id)
	}
}

// fail records err, discards the temp file and moves to stateFailed.
func (w *Writer) fail(err error) {
	w.state = stateFailed
	if cerr := w.cleanup(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	w.err = err
}

// cleanup closes and removes the temp file, if still present.
func (w *Writer) cleanup() error {
	defer w.retire()
	if w.f != nil {
		_ = w.f.Close() // data is discarded; a close error changes nothing
		w.f = nil
	}
	if err := os.Remove(w.tmpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: remove temp file: %w", err)
	}
	return nil
}

// retire ends the writer's life: its temp name is no longer protected from
// Recover, and its write buffer goes back to the pool.
func (w *Writer) retire() {
	if w.key != nil {
		w.key.wipe()
		w.key = nil
	}
	w.v.mu.Lock()
	delete(w.v.live, w.tmpName)
	w.v.mu.Unlock()
	if w.bw != nil {
		w.bw.Reset(io.Discard)
		writeBuffers.Put(w.bw)
		w.bw = nil
	}
}

// writeBuffers recycles the 256 KiB buffers: a batch of small files would
// otherwise allocate (and the GC clear) one per object.
var writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, writeBufferSize) }}
