package proof

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kept is a checkpoint kept on disk.
type Kept struct {
	Size int64     `json:"size"`
	Time time.Time `json:"time"` // when the file was written
	File string    `json:"file"`
}

// KeptName is the file name of the kept checkpoint of a tree size.
func KeptName(size int64) string { return "checkpoint-" + strconv.FormatInt(size, 10) + ".txt" }

// KeepCheckpoint writes checkpoint note cp to dir as checkpoint-<size>.txt
// (0600; dir is created 0700), durably (temp file, fsync, rename, fsync of
// the directory). A file of that size already kept is left as it is, and
// written is false.
func KeepCheckpoint(dir string, cp []byte) (path string, written bool, err error) {
	size, err := CheckpointSize(cp)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	path = filepath.Join(dir, KeptName(size))
	if _, err := os.Lstat(path); err == nil {
		return path, false, nil
	}
	f, err := os.CreateTemp(dir, ".checkpoint-*.tmp")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(cp)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, err
	}
	if err := os.Link(f.Name(), path); err != nil { // never replaces a kept file
		if errors.Is(err, os.ErrExist) {
			return path, false, nil
		}
		return "", false, err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return "", false, err
		}
	}
	return path, true, nil
}

// ListKept lists the checkpoints kept in dir, by size. A missing
// directory holds none.
func ListKept(dir string) ([]Kept, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Kept
	for _, e := range ents {
		name := e.Name()
		s, ok := strings.CutPrefix(name, "checkpoint-")
		if !ok {
			continue
		}
		s, ok = strings.CutSuffix(s, ".txt")
		if !ok {
			continue
		}
		size, err := strconv.ParseInt(s, 10, 64)
		if err != nil || size < 0 || KeptName(size) != name || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("kept checkpoint %s: %w", name, err)
		}
		out = append(out, Kept{Size: size, Time: info.ModTime().UTC(), File: filepath.Join(dir, name)})
	}
	slices.SortFunc(out, func(a, b Kept) int { return cmp.Compare(a.Size, b.Size) })
	return out, nil
}
