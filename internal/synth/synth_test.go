package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	headerRE  = regexp.MustCompile(`^HDR\|([^|]+)\|(\d{8})\|(\d+)$`)
	recordRE  = regexp.MustCompile(`^([A-Z][12]\d{8})\|(\p{Han}{2,3})\|([MF])\|(\d{8})\|(090070[1-4]0)\|(連江縣(南竿|北竿|莒光|東引)鄉\p{Han}+村\d+鄰\d+號(之\d)?(\d樓)?)$`)
	trailerRE = regexp.MustCompile(`^TRL(\d+)$`)
)

func generate(t *testing.T, opts Options) (data []byte, sum string) {
	t.Helper()
	var buf bytes.Buffer
	sum, size, err := WriteFile(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(buf.Len()) {
		t.Fatalf("size %d, wrote %d", size, buf.Len())
	}
	if h := sha256.Sum256(buf.Bytes()); hex.EncodeToString(h[:]) != sum {
		t.Fatalf("returned sha256 %s does not match the bytes", sum)
	}
	return buf.Bytes(), sum
}

func TestFileFormat(t *testing.T) {
	date := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	data, _ := generate(t, Options{Records: 5000, Seed: 7, Feed: "LJC-HH", Date: date, Seq: 12})
	if !utf8.Valid(data) {
		t.Fatal("not UTF-8")
	}
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] != "" {
		t.Fatal("last line not terminated")
	}
	lines = lines[:len(lines)-1]
	if m := headerRE.FindStringSubmatch(lines[0]); m == nil || m[1] != "LJC-HH" || m[2] != "20240229" || m[3] != "12" {
		t.Fatalf("header %q", lines[0])
	}
	m := trailerRE.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("trailer %q", lines[len(lines)-1])
	}
	records := lines[1 : len(lines)-1]
	if n, _ := strconv.Atoi(m[1]); n != len(records) || n != 5000 {
		t.Fatalf("trailer count %s, %d record lines", m[1], len(records))
	}

	ids := make(map[string]bool)
	townshipsSeen := make(map[string]bool)
	zCount := 0
	for _, line := range records {
		f := recordRE.FindStringSubmatch(line)
		if f == nil {
			t.Fatalf("bad record %q", line)
		}
		id, sex, birth := f[1], f[3], f[4]
		if !ValidID(id) {
			t.Fatalf("invalid ID %s in %q", id, line)
		}
		if ids[id] {
			t.Fatalf("duplicate ID %s", id)
		}
		ids[id] = true
		if (id[1] == '1') != (sex == "M") {
			t.Fatalf("sex %s disagrees with ID %s", sex, id)
		}
		if id[0] == 'Z' {
			zCount++
		}
		bd, err := time.Parse("20060102", birth)
		if err != nil || bd.Year() < 1925 || !bd.Before(date) {
			t.Fatalf("birth date %s: %v", birth, err)
		}
		townshipsSeen[f[5]] = true
	}
	if len(townshipsSeen) != 4 {
		t.Errorf("townships seen: %v", townshipsSeen)
	}
	if zCount < 3000 || zCount > 4000 {
		t.Errorf("%d of 5000 IDs start with Z, want about 70%%", zCount)
	}
}

func TestValidID(t *testing.T) {
	// Well-known valid example numbers.
	for _, id := range []string{"A123456789", "F131104093", "Z100000002"} {
		if !ValidID(id) {
			t.Errorf("ValidID(%s) = false", id)
		}
	}
	for _, id := range []string{
		"A123456788", // wrong check digit
		"B123456789", // letter changed
		"A133456789", // digit changed
		"A323456789", // sex digit not 1/2
		"a123456789", "A12345678", "A1234567890", "A12345678X", "", "1123456789",
	} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
	// Every single-digit mutation of generated IDs is caught.
	data, _ := generate(t, Options{Records: 200, Seed: 3})
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:201] {
		id := line[:10]
		for pos := 2; pos < 10; pos++ {
			b := []byte(id)
			b[pos] = '0' + (b[pos]-'0'+1)%10
			if ValidID(string(b)) {
				t.Fatalf("mutated %s -> %s accepted", id, b)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, sumA := generate(t, Options{Records: 1000, Seed: 42})
	b, sumB := generate(t, Options{Records: 1000, Seed: 42})
	if !bytes.Equal(a, b) || sumA != sumB {
		t.Fatal("same options gave different files")
	}
	c, _ := generate(t, Options{Records: 1000, Seed: 43})
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same file")
	}
	// The seed alone selects the people: header fields don't change them.
	d, _ := generate(t, Options{Records: 1000, Seed: 42, Feed: "X", Seq: 9})
	if !bytes.Equal(a[bytes.IndexByte(a, '\n'):], d[bytes.IndexByte(d, '\n'):]) {
		t.Fatal("header options changed the records")
	}
	// A longer file starts with the shorter one's records.
	e, _ := generate(t, Options{Records: 2000, Seed: 42})
	if !bytes.HasPrefix(e, a[:bytes.LastIndex(a, []byte("TRL"))]) {
		t.Fatal("records depend on the record count")
	}
}

func TestVariants(t *testing.T) {
	crlf, _ := generate(t, Options{Records: 10, Seed: 1, CRLF: true})
	lf, _ := generate(t, Options{Records: 10, Seed: 1})
	if !bytes.Equal(bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n")), lf) || bytes.Count(crlf, []byte("\r\n")) != 12 {
		t.Fatal("CRLF variant differs from LF beyond line endings")
	}
	noHdr, _ := generate(t, Options{Records: 10, Seed: 1, NoHeader: true})
	if !bytes.Equal(noHdr, lf[bytes.IndexByte(lf, '\n')+1:]) {
		t.Fatal("NoHeader")
	}
	noTrl, _ := generate(t, Options{Records: 10, Seed: 1, NoTrailer: true})
	if !bytes.Equal(noTrl, lf[:bytes.LastIndex(lf, []byte("TRL"))]) {
		t.Fatal("NoTrailer")
	}
	bad, _ := generate(t, Options{Records: 10, Seed: 1, TrailerDelta: 1})
	if !bytes.HasSuffix(bad, []byte("\nTRL11\n")) {
		t.Fatal("TrailerDelta")
	}
	empty, _ := generate(t, Options{})
	if string(empty) != "HDR|HHREG|20250101|0\nTRL0\n" {
		t.Fatalf("empty file %q", empty)
	}
	for _, opts := range []Options{{Records: -1}, {Feed: "a|b"}, {Feed: "a\nb"}} {
		if _, _, err := WriteFile(io.Discard, opts); err == nil {
			t.Errorf("WriteFile(%+v) succeeded", opts)
		}
	}
}

func TestSidecarAndTree(t *testing.T) {
	dir := t.TempDir()
	specs := []FileSpec{
		{Name: "HHREG_20250101_001.txt", Options: Options{Records: 100, Seed: 1, Seq: 1}},
		{Name: "in/HHREG_20250102_002.txt", Options: Options{Records: 50, Seed: 2, Seq: 2, CRLF: true}},
	}
	if err := GenerateTree(dir, specs); err != nil {
		t.Fatal(err)
	}
	sidecarRE := regexp.MustCompile(`^([0-9a-f]{64}) ([ *])(.+)\n$`) // sha256sum's format
	for _, s := range specs {
		path := filepath.Join(dir, filepath.FromSlash(s.Name))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		side, err := os.ReadFile(path + ".sha256")
		if err != nil {
			t.Fatal(err)
		}
		m := sidecarRE.FindStringSubmatch(string(side))
		if m == nil {
			t.Fatalf("sidecar %q", side)
		}
		sum := sha256.Sum256(data)
		if m[1] != hex.EncodeToString(sum[:]) || m[2] != " " || m[3] != filepath.Base(path) {
			t.Fatalf("sidecar %q for %s", side, s.Name)
		}
		want, _ := generate(t, s.Options)
		if !bytes.Equal(data, want) {
			t.Fatalf("%s differs from WriteFile output", s.Name)
		}
		if sha256sum, err := exec.LookPath("sha256sum"); err == nil {
			cmd := exec.Command(sha256sum, "--check", "--strict", filepath.Base(path)+".sha256")
			cmd.Dir = filepath.Dir(path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sha256sum -c: %v\n%s", err, out)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if Sidecar("ab", "f.txt") != "ab  f.txt\n" {
		t.Fatal("Sidecar format")
	}
	for _, bad := range []string{"", "../x", "/abs"} {
		if err := GenerateTree(dir, []FileSpec{{Name: bad}}); err == nil {
			t.Errorf("GenerateTree accepted name %q", bad)
		}
	}
}

func TestWriteSized(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1 << 20} {
		var buf bytes.Buffer
		sum, records, size, err := WriteSized(&buf, n, 5)
		if err != nil {
			t.Fatal(err)
		}
		if size < n || size != int64(buf.Len()) {
			t.Fatalf("WriteSized(%d): size %d, wrote %d", n, size, buf.Len())
		}
		if h := sha256.Sum256(buf.Bytes()); hex.EncodeToString(h[:]) != sum {
			t.Fatal("sha256 mismatch")
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if int64(len(lines)-2) != records || lines[len(lines)-1] != "TRL"+strconv.FormatInt(records, 10) {
			t.Fatalf("WriteSized(%d): %d records reported, %d lines, trailer %q", n, records, len(lines), lines[len(lines)-1])
		}
		// Not much more than asked: at most one record and the trailer over.
		if n > 0 && size > n+200 {
			t.Fatalf("WriteSized(%d) wrote %d bytes", n, size)
		}
	}
}

// TestWriteSizedLinear checks that generation streams: allocations do not
// grow with the size, and time grows about linearly.
func TestWriteSizedLinear(t *testing.T) {
	allocs := func(n int64) float64 {
		return testing.AllocsPerRun(2, func() {
			if _, _, _, err := WriteSized(io.Discard, n, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(1<<20), allocs(16<<20)
	if large > small+5 {
		t.Fatalf("allocations grow with size: %v for 1 MiB, %v for 16 MiB", small, large)
	}

	if testing.Short() {
		return
	}
	timeIt := func(n int64) time.Duration { // best of 3: the machine may be busy
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			if _, _, _, err := WriteSized(io.Discard, n, 1); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	timeIt(1 << 20) // warm up
	small4, large32 := timeIt(4<<20), timeIt(32<<20)
	t.Logf("4 MiB: %v, 32 MiB: %v (%.0f MB/s)", small4, large32, 32/large32.Seconds()*1.048576)
	if large32 > 30*small4 || large32 > 20*time.Second {
		t.Fatalf("not linear: 4 MiB in %v, 32 MiB in %v", small4, large32)
	}
}

func TestDateConversion(t *testing.T) {
	for day := daysFromCivil(1900, 1, 1); day < daysFromCivil(2100, 1, 1); day += 37 {
		y, m, d := civilFromDays(day)
		want := time.Unix(day*86400, 0).UTC()
		if int(y) != want.Year() || time.Month(m) != want.Month() || int(d) != want.Day() {
			t.Fatalf("day %d: %d-%d-%d, want %v", day, y, m, d, want)
		}
		if daysFromCivil(y, m, d) != day {
			t.Fatalf("round trip of day %d", day)
		}
	}
}

func BenchmarkWriteSized(b *testing.B) {
	const size = 8 << 20
	b.SetBytes(size)
	for b.Loop() {
		if _, _, _, err := WriteSized(io.Discard, size, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteFile(b *testing.B) {
	const records = 100_000
	for b.Loop() {
		if _, _, err := WriteFile(io.Discard, Options{Records: records, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*records/b.Elapsed().Seconds(), "records/s")
}

// TestSerialPermutation checks that the serial digits of the first 10^7
// records of a file are all distinct, whatever the seed.
func TestSerialPermutation(t *testing.T) {
	if testing.Short() {
		t.Skip("10^7 iterations")
	}
	g, err := newGenerator(io.Discard, Options{Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]uint64, serialSpace/64+1)
	for i := range uint64(serialSpace) {
		s := g.serial(i)
		if s >= serialSpace || seen[s/64]&(1<<(s%64)) != 0 {
			t.Fatalf("index %d: serial %d repeated or out of range", i, s)
		}
		seen[s/64] |= 1 << (s % 64)
	}
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, io.ErrShortWrite
	}
	w.left -= len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	if _, _, err := WriteFile(&failingWriter{left: 1000}, Options{Records: 1_000_000}); err == nil {
		t.Fatal("WriteFile ignored a write error")
	}
	if _, _, _, err := WriteSized(&failingWriter{left: 1000}, 100<<20, 1); err == nil {
		t.Fatal("WriteSized ignored a write error")
	}
	if err := GenerateTree(filepath.Join(t.TempDir(), "f"), []FileSpec{{Name: "x", Options: Options{Feed: "a|b"}}}); err == nil {
		t.Fatal("GenerateTree ignored an error")
	}
}
