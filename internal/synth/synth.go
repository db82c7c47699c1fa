// Package synth writes synthetic household-registry files for tests, demos
// and benchmarks. Every person in them is invented: names are drawn from
// small built-in lists of common characters, identity numbers are random
// (but well-formed) and addresses are random villages of Lienchiang County
// (Matsu). No real record is used or reproduced.
//
// # File format
//
// The real registry format is not public; this one is invented to have the
// same shape (a header, pipe-separated records, a counted trailer). Lines
// are UTF-8 and end in "\n", or "\r\n" with [Options.CRLF]; the last line is
// terminated too.
//
//		HDR|<feed>|<YYYYMMDD>|<seq>
//		<ID>|<name>|<sex>|<birth YYYYMMDD>|<township code>|<address>
//		...
//		TRL<count>
//
//	  - feed is [Options.Feed] (default "HHREG"), the date [Options.Date]
//	    (default 2025-01-01) and seq [Options.Seq] in decimal.
//	  - ID is a Taiwan national identification number: an upper-case letter,
//	    a sex digit (1 male, 2 female), seven serial digits and a check digit
//	    computed with the real algorithm (see [ValidID]). The letter is "Z"
//	    (Lienchiang County) for about 70% of people and any letter otherwise.
//	    Within one file the serial digits follow a permutation of the record
//	    index, so the first 10,000,000 IDs of a file are all distinct.
//	  - name is a Traditional Chinese surname followed by one or two given-name
//	    characters chosen by sex.
//	  - sex is "M" or "F", always agreeing with the ID's sex digit.
//	  - birth is a date from 1925-01-01 up to the day before the file date.
//	  - township code is an 8-digit code modelled on the Ministry of the
//	    Interior town codes of Lienchiang County (09007010 南竿鄉, 09007020
//	    北竿鄉, 09007030 莒光鄉, 09007040 東引鄉); treat them as plausible,
//	    not authoritative.
//	  - address is 連江縣<township><village><n>鄰<n>號, sometimes with 之<n>
//	    and/or <n>樓.
//	  - count is the number of record lines (header and trailer excluded),
//	    matching ^TRL(\d+)$.
//
// No field contains "|", "\r" or "\n".
//
// # Design
//
// Output is a pure function of [Options]: records come from a math/rand/v2
// PCG generator seeded with [Options.Seed] only, so the same seed yields the
// same people whatever the feed, date or sequence number. Files are
// streamed: each record is formatted into one reused buffer and written
// through a bufio.Writer that also feeds SHA-256 and a byte counter, so
// memory use is constant, there is no per-record allocation, and millions
// of records cost only linear time. [WriteSized] writes at least a given
// number of bytes for benchmarks; [GenerateTree] writes files plus
// sha256sum-style sidecars ([Sidecar]).
package synth

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options control one generated file.
type Options struct {
	Records  int       // number of record lines; must be >= 0
	Seed     uint64    // selects the (deterministic) people
	Feed     string    // header feed name; default "HHREG"; no '|' or line breaks
	Date     time.Time // header date and upper bound of birth dates; default 2025-01-01
	Seq      int       // header sequence number
	CRLF     bool      // end lines with "\r\n" instead of "\n"
	NoHeader bool      // omit the header line (a malformed file)

	// NoTrailer omits the trailer line (a truncated-looking file).
	NoTrailer bool
	// TrailerDelta is added to the count written in the trailer, to make a
	// file whose trailer disagrees with its records. A resulting negative
	// count is written as is.
	TrailerDelta int
}

// DefaultFeed is the feed name used when [Options.Feed] is empty.
const DefaultFeed = "HHREG"

// DefaultDate is the file date used when [Options.Date] is zero.
var DefaultDate = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// FileSpec names one file of [GenerateTree].
type FileSpec struct {
	Name string // slash-separated path relative to the tree's directory
	Options
}

// WriteFile streams one file to w and returns the SHA-256 (lower-case hex)
// and size of the bytes written.
func WriteFile(w io.Writer, opts Options) (sha256hex string, size int64, err error) {
	if opts.Records < 0 {
		return "", 0, fmt.Errorf("synth: negative record count %d", opts.Records)
	}
	g, err := newGenerator(w, opts)
	if err != nil {
		return "", 0, err
	}
	g.header()
	for range opts.Records {
		if g.record() != nil {
			break // reported by finish
		}
	}
	g.trailer(int64(opts.Records))
	return g.finish()
}

// WriteSized writes a file of at least minBytes bytes (header, as many
// records as needed, trailer) for benchmarks, using default options and
// seed. It returns the SHA-256 (hex), the number of records and the size.
func WriteSized(w io.Writer, minBytes int64, seed uint64) (sha256hex string, records int64, size int64, err error) {
	g, err := newGenerator(w, Options{Seed: seed})
	if err != nil {
		return "", 0, 0, err
	}
	g.header()
	for g.count.n+int64(g.bw.Buffered()) < minBytes {
		if g.record() != nil {
			break // reported by finish
		}
		records++
	}
	g.trailer(records)
	sha256hex, size, err = g.finish()
	return sha256hex, records, size, err
}

// Sidecar returns the content of a checksum sidecar file in the format of
// sha256sum: "HEX  NAME\n" (two spaces: text mode).
func Sidecar(sha256hex, name string) string {
	return sha256hex + "  " + name + "\n"
}

// GenerateTree writes each file of files under dir (created if needed),
// followed by its sidecar NAME.sha256 in the same directory, naming the
// file by its base name, so that `sha256sum -c NAME.sha256` run in that
// directory verifies it. Each file, then its sidecar, is written to a
// temporary name and renamed into place, so a concurrent reader (e.g. an
// SFTP server serving dir) never sees a partial file or a sidecar before
// its file.
func GenerateTree(dir string, files []FileSpec) error {
	for _, spec := range files {
		name := filepath.FromSlash(spec.Name)
		if spec.Name == "" || !filepath.IsLocal(name) {
			return fmt.Errorf("synth: file name %q is not a local relative path", spec.Name)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		var sum string
		if err := writeAtomic(dst, func(w io.Writer) (err error) {
			sum, _, err = WriteFile(w, spec.Options)
			return err
		}); err != nil {
			return fmt.Errorf("synth: %s: %w", spec.Name, err)
		}
		if err := writeAtomic(dst+".sha256", func(w io.Writer) error {
			_, err := io.WriteString(w, Sidecar(sum, filepath.Base(dst)))
			return err
		}); err != nil {
			return fmt.Errorf("synth: %s.sha256: %w", spec.Name, err)
		}
	}
	return nil
}

func writeAtomic(dst string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ValidID reports whether id is a well-formed Taiwan national
// identification number: an upper-case letter, '1' or '2', eight digits,
// and a correct check digit. The letter maps to a two-digit number (A=10,
// B=11, ... H=17, I=34, J=18, ... N=22, O=35, P=23, ... V=29, W=32, X=30,
// Y=31, Z=33); its two digits followed by the nine digits of the ID,
// weighted 1,9,8,7,6,5,4,3,2,1,1, must sum to a multiple of 10.
func ValidID(id string) bool {
	if len(id) != 10 || id[0] < 'A' || id[0] > 'Z' || (id[1] != '1' && id[1] != '2') {
		return false
	}
	for i := 1; i < 10; i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return (idSum(id[0], id[1:9])+int(id[9]-'0'))%10 == 0
}

// letterCodes maps 'A'..'Z' to the numbers of the national ID checksum.
var letterCodes = [26]int{
	10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
	22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33,
}

// idSum is the weighted sum of the letter and the first eight digits
// (everything but the check digit).
func idSum[T string | []byte](letter byte, digits T) int {
	c := letterCodes[letter-'A']
	sum := c/10 + c%10*9
	for i := range 8 {
		sum += int(digits[i]-'0') * (8 - i)
	}
	return sum
}

// checkDigit returns the digit that makes the weighted sum a multiple of 10.
func checkDigit(letter byte, digits []byte) byte {
	return byte('0' + (10-idSum(letter, digits)%10)%10)
}

var errBadFeed = errors.New("synth: feed name must not contain '|', '\\r' or '\\n'")

// countingHash receives the buffered output: it forwards to the caller's
// writer and feeds the hash and byte count.
type countingHash struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

const serialSpace = 10_000_000 // seven serial digits

// affine is the permutation x -> (mul*x + add) mod serialSpace of
// [0, serialSpace); it is one because mul is coprime to 10.
type affine struct{ mul, add uint64 }

func newAffine(r *rand.Rand) affine {
	for {
		a := affine{mul: r.Uint64N(serialSpace), add: r.Uint64N(serialSpace)}
		if a.mul%2 != 0 && a.mul%5 != 0 {
			return a
		}
	}
}

func (a affine) apply(x uint64) uint64 { return (a.mul*x + a.add) % serialSpace }

// reverseDigits reverses the seven decimal digits of x, a permutation of
// [0, serialSpace) that breaks the arithmetic progression of an affine map
// (so consecutive records do not get evenly spaced IDs).
func reverseDigits(x uint64) uint64 {
	var y uint64
	for range 7 {
		y = y*10 + x%10
		x /= 10
	}
	return y
}

type generator struct {
	opts   Options
	rng    *rand.Rand
	count  *countingHash
	bw     *bufio.Writer
	buf    []byte
	eol    string
	index  uint64
	perm   [2]affine // serial = perm[1](reverseDigits(perm[0](index)))
	minDay int64     // birth range, days since 1970-01-01
	spanDy int64
}

func newGenerator(w io.Writer, opts Options) (*generator, error) {
	if opts.Feed == "" {
		opts.Feed = DefaultFeed
	}
	if strings.ContainsAny(opts.Feed, "|\r\n") {
		return nil, errBadFeed
	}
	if opts.Date.IsZero() {
		opts.Date = DefaultDate
	}
	g := &generator{
		opts: opts,
		rng:  rand.New(rand.NewPCG(opts.Seed, 0x6d6174737520726e)), // fixed stream
		eol:  "\n",
		buf:  make([]byte, 0, 256),
	}
	if opts.CRLF {
		g.eol = "\r\n"
	}
	g.count = &countingHash{w: w, h: sha256.New()}
	g.bw = bufio.NewWriterSize(g.count, 256<<10)
	for i := range g.perm {
		g.perm[i] = newAffine(g.rng)
	}
	y, m, d := opts.Date.Date()
	end := daysFromCivil(int64(y), int64(m), int64(d))
	g.minDay = daysFromCivil(1925, 1, 1)
	g.spanDy = max(end-g.minDay, 1)
	return g, nil
}

// serial returns the seven serial digits (as a number) of record i.
func (g *generator) serial(i uint64) uint64 {
	return g.perm[1].apply(reverseDigits(g.perm[0].apply(i % serialSpace)))
}

func (g *generator) header() {
	if g.opts.NoHeader {
		return
	}
	b := append(g.buf[:0], "HDR|"...)
	b = append(b, g.opts.Feed...)
	b = append(b, '|')
	y, m, d := g.opts.Date.Date()
	b = appendDate(b, int64(y), int64(m), int64(d))
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(g.opts.Seq), 10)
	b = append(b, g.eol...)
	g.buf = b
	g.bw.Write(b)
}

func (g *generator) trailer(records int64) {
	if g.opts.NoTrailer {
		return
	}
	b := append(g.buf[:0], "TRL"...)
	b = strconv.AppendInt(b, records+int64(g.opts.TrailerDelta), 10)
	b = append(b, g.eol...)
	g.buf = b
	g.bw.Write(b)
}

func (g *generator) finish() (string, int64, error) {
	if err := g.bw.Flush(); err != nil {
		return "", g.count.n, fmt.Errorf("synth: write: %w", err)
	}
	return hex.EncodeToString(g.count.h.Sum(nil)), g.count.n, nil
}

// record formats one person into g.buf and writes it. A write error is
// also sticky in the bufio.Writer, so finish reports it.
func (g *generator) record() error {
	r := g.rng
	b := g.buf[:0]

	// ID: letter, sex digit, seven serial digits, check digit.
	letter := byte('Z')
	if r.IntN(10) >= 7 {
		letter = byte('A' + r.IntN(26))
	}
	male := r.IntN(2) == 0
	sexDigit := byte('2')
	if male {
		sexDigit = '1'
	}
	serial := g.serial(g.index)
	g.index++
	start := len(b)
	b = append(b, letter, sexDigit)
	for div := uint64(serialSpace / 10); div > 0; div /= 10 {
		b = append(b, byte('0'+serial/div%10))
	}
	b = append(b, checkDigit(letter, b[start+1:start+9]))
	b = append(b, '|')

	// Name.
	b = append(b, surnames[r.IntN(len(surnames))]...)
	given := femaleGiven
	if male {
		given = maleGiven
	}
	b = append(b, given[r.IntN(len(given))]...)
	if r.IntN(10) != 0 { // 90% have two given-name characters
		b = append(b, given[r.IntN(len(given))]...)
	}

	// Sex, birth date.
	if male {
		b = append(b, "|M|"...)
	} else {
		b = append(b, "|F|"...)
	}
	y, m, d := civilFromDays(g.minDay + r.Int64N(g.spanDy))
	b = appendDate(b, y, m, d)
	b = append(b, '|')

	// Township code and address.
	t := &townships[pickTownship(r.IntN(100))]
	b = append(b, t.code...)
	b = append(b, "|連江縣"...)
	b = append(b, t.name...)
	b = append(b, t.villages[r.IntN(len(t.villages))]...)
	b = strconv.AppendInt(b, int64(1+r.IntN(12)), 10)
	b = append(b, "鄰"...)
	b = strconv.AppendInt(b, int64(1+r.IntN(200)), 10)
	b = append(b, "號"...)
	if r.IntN(5) == 0 {
		b = append(b, "之"...)
		b = strconv.AppendInt(b, int64(1+r.IntN(5)), 10)
	}
	if r.IntN(7) == 0 {
		b = strconv.AppendInt(b, int64(2+r.IntN(4)), 10)
		b = append(b, "樓"...)
	}
	b = append(b, g.eol...)
	g.buf = b
	_, err := g.bw.Write(b)
	return err
}

func appendDate(b []byte, y, m, d int64) []byte {
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	return append(b, byte('0'+m/10), byte('0'+m%10), byte('0'+d/10), byte('0'+d%10))
}

// daysFromCivil returns the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
