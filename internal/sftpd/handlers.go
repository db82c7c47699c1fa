package sftpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
)

// handler implements pkg/sftp's request-server handler interfaces for one
// SFTP session, confined to root.
type handler struct {
	conn  *conn
	srv   *Server
	root  *os.Root
	hooks *Hooks
}

var (
	_ sftp.FileReader           = (*handler)(nil)
	_ sftp.FileWriter           = (*handler)(nil)
	_ sftp.FileCmder            = (*handler)(nil)
	_ sftp.PosixRenameFileCmder = (*handler)(nil)
	_ sftp.FileLister           = (*handler)(nil)
	_ sftp.LstatFileLister      = (*handler)(nil)
	_ sftp.ReadlinkFileLister   = (*handler)(nil)
)

// errOutsideRoot is returned for a path that is not a clean absolute slash
// path, i.e. one that could name something outside the root.
var errOutsideRoot = sftp.ErrSSHFxPermissionDenied

// rel converts a request path (clean, absolute, slash-separated, as produced
// by pkg/sftp) into a name for os.Root. Anything else is refused rather than
// reinterpreted; os.Root then refuses symlinks that lead out of the root.
func rel(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return "", errOutsideRoot
	}
	name := strings.TrimPrefix(p, "/")
	if name == "" {
		return ".", nil
	}
	if !fs.ValidPath(name) {
		return "", errOutsideRoot
	}
	return name, nil
}

// relNotRoot is rel for operations that must not target the root itself.
func relNotRoot(p string) (string, error) {
	name, err := rel(p)
	if err == nil && name == "." {
		return "", sftp.ErrSSHFxPermissionDenied
	}
	return name, err
}

func (h *handler) statHook(p string, fi os.FileInfo) os.FileInfo {
	if h.hooks != nil && h.hooks.Stat != nil {
		return h.hooks.Stat(p, fi)
	}
	return fi
}

// Fileread opens a regular file for reading.
func (h *handler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	name, err := rel(r.Filepath)
	if err != nil {
		return nil, err
	}
	f, err := h.root.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		if fi.IsDir() {
			return nil, &os.PathError{Op: "open", Path: r.Filepath, Err: syscall.EISDIR}
		}
		return nil, &os.PathError{Op: "open", Path: r.Filepath, Err: errors.New("not a regular file")}
	}
	var budget int64
	if h.hooks != nil && h.hooks.DropAfterBytes != nil {
		budget = h.hooks.DropAfterBytes(r.Filepath)
	}
	h.srv.filesOpened.Add(1)
	h.srv.logf("sftpd: conn %d: open %s (%d bytes)", h.conn.id, r.Filepath, fi.Size())
	return &reader{h: h, f: f, path: r.Filepath, budget: budget}, nil
}

// reader serves reads of one open handle, applying the ReadAt and
// DropAfterBytes hooks. pkg/sftp calls ReadAt concurrently.
type reader struct {
	h      *handler
	f      *os.File
	path   string
	budget int64 // <= 0: unlimited
	served atomic.Int64
}

func (rd *reader) ReadAt(p []byte, off int64) (int, error) {
	n, err := rd.f.ReadAt(p, off)
	if rd.h.hooks != nil && rd.h.hooks.ReadAt != nil {
		n, err = rd.h.hooks.ReadAt(rd.path, p, off, n, err)
		n = max(0, min(n, len(p)))
	}
	if rd.budget > 0 && n > 0 {
		if total := rd.served.Add(int64(n)); total >= rd.budget {
			rd.h.conn.drop(fmt.Sprintf("%s: %d bytes served, DropAfterBytes=%d", rd.path, total, rd.budget))
			return 0, sftp.ErrSSHFxConnectionLost
		}
	}
	rd.h.srv.bytesServed.Add(int64(n))
	return n, err
}

func (rd *reader) Close() error { return rd.f.Close() }

// Filewrite refuses every write: the server is read-mostly.
func (h *handler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	h.srv.logf("sftpd: conn %d: refused write of %s", h.conn.id, r.Filepath)
	return nil, sftp.ErrSSHFxPermissionDenied
}

// Filecmd handles remove, rmdir, mkdir and rename; the rest is unsupported.
func (h *handler) Filecmd(r *sftp.Request) error {
	err := h.filecmd(r)
	if r.Method == "Rename" {
		h.srv.logf("sftpd: conn %d: rename %s -> %s: %v", h.conn.id, r.Filepath, r.Target, errString(err))
	} else {
		h.srv.logf("sftpd: conn %d: %s %s: %v", h.conn.id, strings.ToLower(r.Method), r.Filepath, errString(err))
	}
	return err
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (h *handler) filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Remove", "Rmdir":
		name, err := relNotRoot(r.Filepath)
		if err != nil {
			return err
		}
		fi, err := h.root.Lstat(name)
		if err != nil {
			return err
		}
		if r.Method == "Remove" && fi.IsDir() {
			return &os.PathError{Op: "remove", Path: r.Filepath, Err: syscall.EISDIR}
		}
		if r.Method == "Rmdir" && !fi.IsDir() {
			return &os.PathError{Op: "rmdir", Path: r.Filepath, Err: syscall.ENOTDIR}
		}
		return h.root.Remove(name)
	case "Mkdir":
		name, err := relNotRoot(r.Filepath)
		if err != nil {
			return err
		}
		return h.root.Mkdir(name, 0o755)
	case "Rename":
		from, to, err := h.renameNames(r)
		if err != nil {
			return err
		}
		// SFTPv3 (and OpenSSH's sftp-server) refuse to replace an existing
		// target; posix-rename@openssh.com is the replacing variant.
		if _, err := h.root.Lstat(to); err == nil {
			return &os.PathError{Op: "rename", Path: r.Target, Err: syscall.EEXIST}
		}
		return h.root.Rename(from, to)
	default: // Setstat, Link, Symlink, ...
		return sftp.ErrSSHFxOpUnsupported
	}
}

// PosixRename renames, replacing an existing target (posix-rename@openssh.com).
func (h *handler) PosixRename(r *sftp.Request) error {
	from, to, err := h.renameNames(r)
	if err == nil {
		err = h.root.Rename(from, to)
	}
	h.srv.logf("sftpd: conn %d: posix-rename %s -> %s: %v", h.conn.id, r.Filepath, r.Target, errString(err))
	return err
}

func (h *handler) renameNames(r *sftp.Request) (from, to string, err error) {
	if from, err = relNotRoot(r.Filepath); err != nil {
		return "", "", err
	}
	if to, err = relNotRoot(r.Target); err != nil {
		return "", "", err
	}
	return from, to, nil
}

// Filelist serves readdir ("List") and stat/fstat ("Stat").
func (h *handler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name, err := rel(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		return h.list(r.Filepath, name)
	case "Stat":
		fi, err := h.root.Stat(name)
		if err != nil {
			return nil, err
		}
		return listerAt{h.statHook(r.Filepath, fi)}, nil
	default: // Readlink
		return nil, sftp.ErrSSHFxOpUnsupported
	}
}

// Readlink serves readlink: the link's target as stored, relative or
// absolute (a client resolves it; os.Root still refuses to follow a link
// out of the root on open or stat).
func (h *handler) Readlink(p string) (string, error) {
	name, err := rel(p)
	if err != nil {
		return "", err
	}
	return h.root.Readlink(name)
}

// Lstat serves lstat (does not follow a final symbolic link).
func (h *handler) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	name, err := rel(r.Filepath)
	if err != nil {
		return nil, err
	}
	fi, err := h.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	return listerAt{h.statHook(r.Filepath, fi)}, nil
}

func (h *handler) list(dir, name string) (sftp.ListerAt, error) {
	d, err := h.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	infos := make([]os.FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, h.statHook(path.Join(dir, e.Name()), fi))
	}
	slices.SortFunc(infos, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return listerAt(infos), nil
}

// listerAt is a fixed list of file infos.
type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

// OverrideInfo returns fi with its size replaced by size (when size >= 0)
// and its modification time by mtime (when non-zero); for [Hooks.Stat].
func OverrideInfo(fi os.FileInfo, size int64, mtime time.Time) os.FileInfo {
	o := overrideInfo{FileInfo: fi, size: fi.Size(), mtime: fi.ModTime()}
	if size >= 0 {
		o.size = size
	}
	if !mtime.IsZero() {
		o.mtime = mtime
	}
	return o
}

type overrideInfo struct {
	os.FileInfo
	size  int64
	mtime time.Time
}

func (o overrideInfo) Size() int64        { return o.size }
func (o overrideInfo) ModTime() time.Time { return o.mtime }
