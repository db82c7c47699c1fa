package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"custodian/internal/synth"
)

// workload is one directory of source files that every tool pulls.
type workload struct {
	key     string // "A", "B" or "A1" (the 1 GiB memory reference)
	title   string
	dir     string // absolute; the same path over SFTP (no chroot)
	job     string // custodian job name
	pattern string // custodian job pattern
	single  string // the one data file of an extract workload (sftp `get`)
	files   int    // data files (without sidecars)
	records int64  // records in all data files
	bytes   int64  // bytes of the data files (without sidecars)
	// all* count every file of dir, sidecars included: what rclone copies.
	allFiles int
	allBytes int64
	// The path to sshd: direct on loopback, or through a delay line.
	source string     // custodian source name
	link   *delayLine // nil: straight to sshd
	rate   float64    // the delay line's pacing, bits per second (0: unpaced)
	base   string     // the loopback workload this one repeats ("" for A, B)
}

const (
	gib          = 1 << 30
	smallFileKiB = 20
)

// sizes returns workload A's size and workload B's file count.
func (o *options) sizes() (bigBytes int64, smallFiles int) {
	if o.Quick {
		return 8 << 20, 50
	}
	return int64(o.BigGiB * gib), 2000
}

// generate writes the workloads' source files with internal/synth.
func (b *bench) generate() error {
	bigBytes, smallFiles := b.opts.sizes()
	t0 := time.Now()
	a, err := b.generateExtract("A", "a", bigBytes)
	if err != nil {
		return err
	}
	b.logf("workload A: %s in %s (%d records) generated in %s", fmtBytes(a.bytes), a.single, a.records, time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	bw, err := b.generateChanges(smallFiles)
	if err != nil {
		return err
	}
	b.logf("workload B: %d files of ~%d KiB (%s, %d records) with sidecars generated in %s",
		bw.files, smallFileKiB, fmtBytes(bw.bytes), bw.records, time.Since(t0).Round(time.Millisecond))
	b.workloads = []*workload{a, bw}
	for _, w := range b.workloads {
		w.source = "bench"
	}

	if !b.opts.Quick && bigBytes != gib && hasTool(b.opts.Tools, toolCustodian) {
		t0 = time.Now()
		if b.ref, err = b.generateExtract("A1", "a1", gib); err != nil {
			return err
		}
		b.ref.source = "bench"
		b.logf("memory reference A1: %s generated in %s", fmtBytes(b.ref.bytes), time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// generateExtract writes one extract of at least size bytes and its sidecar.
func (b *bench) generateExtract(key, sub string, size int64) (*workload, error) {
	dir := filepath.Join(b.work, "src", sub)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	name := "HR_FULL_20250101.txt"
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	sum, records, n, err := synth.WriteSized(f, size, 1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s: %w", name, err)
	}
	side := synth.Sidecar(sum, name)
	if err := os.WriteFile(filepath.Join(dir, name+".sha256"), []byte(side), 0o644); err != nil {
		return nil, err
	}
	w := &workload{
		key: key, dir: dir, pattern: "HR_FULL_*.txt", single: name,
		files: 1, records: records, bytes: n,
		allFiles: 2, allBytes: n + int64(len(side)),
		title: fmt.Sprintf("one %s extract", fmtBytes(n)),
	}
	w.job = "bench-" + lower(key)
	return w, nil
}

// generateChanges writes n change-like files of about smallFileKiB each,
// each followed by its sidecar.
func (b *bench) generateChanges(n int) (*workload, error) {
	dir := filepath.Join(b.work, "src", "b")
	records, err := recordsFor(smallFileKiB << 10)
	if err != nil {
		return nil, err
	}
	specs := make([]synth.FileSpec, n)
	for i := range specs {
		seq := i + 1
		specs[i] = synth.FileSpec{
			Name: fmt.Sprintf("HR_CHG_20250101_%04d.txt", seq),
			Options: synth.Options{
				Records: records, Seed: uint64(1000 + seq), Feed: "HR_CHG", Seq: seq,
			},
		}
	}
	if err := synth.GenerateTree(dir, specs); err != nil {
		return nil, err
	}
	w := &workload{
		key: "B", dir: dir, job: "bench-b", pattern: "HR_CHG_*.txt",
		files: n, records: int64(n) * int64(records),
	}
	w.allFiles, w.allBytes, err = dirStats(dir)
	if err != nil {
		return nil, err
	}
	for _, s := range specs {
		fi, err := os.Stat(filepath.Join(dir, s.Name))
		if err != nil {
			return nil, err
		}
		w.bytes += fi.Size()
	}
	w.title = fmt.Sprintf("%d change files of ~%d KiB (%s)", n, smallFileKiB, fmtBytes(w.bytes))
	return w, nil
}

// recordsFor returns the record count that makes a synth file of about
// size bytes, measured on a sample.
func recordsFor(size int) (int, error) {
	const sample = 2000
	_, full, err := synth.WriteFile(io.Discard, synth.Options{Records: sample, Seed: 7, Feed: "HR_CHG"})
	if err != nil {
		return 0, err
	}
	_, empty, err := synth.WriteFile(io.Discard, synth.Options{Records: 0, Seed: 7, Feed: "HR_CHG"})
	if err != nil {
		return 0, err
	}
	per := float64(full-empty) / sample
	return max(1, int((float64(size)-float64(empty))/per+0.5)), nil
}

// dirStats counts the regular files under dir and their bytes.
func dirStats(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += fi.Size()
		}
		return nil
	})
	return files, bytes, err
}

// addWANWorkloads repeats A and B through the delay line (keys A-wan,
// B-wan) and, with a rate, A through the paced line (A-paced).
func (b *bench) addWANWorkloads(wan, paced *delayLine) {
	var extra []*workload
	for _, w := range b.workloads {
		for _, l := range []struct {
			suffix, source string
			link           *delayLine
			rate           float64
		}{{"-wan", "wan", wan, 0}, {"-paced", "paced", paced, b.opts.rate}} {
			if l.link == nil || (l.rate > 0 && w.single == "") {
				continue // the paced line is for the extract only
			}
			c := *w
			c.key, c.base, c.source, c.link, c.rate = w.key+l.suffix, w.key, l.source, l.link, l.rate
			c.job = w.job + l.suffix
			c.title = w.title + ", " + b.linkDesc(l.rate)
			extra = append(extra, &c)
		}
	}
	b.workloads = append(b.workloads, extra...)
}

// linkDesc describes the delay line.
func (b *bench) linkDesc(rate float64) string {
	d := fmt.Sprintf("%s RTT", b.opts.RTT)
	if rate > 0 {
		return d + ", paced at " + fmtRate(rate)
	}
	return d + ", unpaced"
}
