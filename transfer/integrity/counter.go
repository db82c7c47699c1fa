package integrity

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"

	"custodian/internal/limits"
)

// MaxMatchLine is the longest header or trailer line, in bytes without its
// line terminator, that a Counter keeps for matching. A longer first or last
// line cannot match and is reported as a problem.
const MaxMatchLine = 4096

// CountSpec describes how a file's records are laid out.
type CountSpec struct {
	// Header, if set, must match the first line, which is then not a
	// record. Its first capture group, if it has one and the group takes
	// part in the match, is the declared record count (ASCII digits, spaces
	// around them ignored).
	Header *regexp.Regexp
	// Trailer, if set, must match the last line, which is then not a
	// record. Its first capture group declares the count as for Header.
	Trailer *regexp.Regexp
	// RecordLength, if > 0, is the length in bytes that every record line
	// (not the header or trailer; not counting "\n" or "\r\n") must have.
	RecordLength int
	// Gzip says the bytes written are gzip data (one or more members); the
	// decompressed stream is counted.
	Gzip bool
	// MaxInflated bounds, in Gzip mode, the decompressed size in bytes;
	// zero or less means DefaultMaxInflated. Past it decompression stops:
	// exactly MaxInflated bytes are counted and a problem names the limit.
	MaxInflated int64
	// MaxInflateRatio bounds, in Gzip mode, the decompressed bytes per
	// compressed byte read so far, checked once more than InflateRatioFloor
	// bytes were inflated; zero or less means DefaultMaxInflateRatio. Past
	// it decompression stops and a problem names the limit.
	MaxInflateRatio int
}

// Decompression ceilings. A gzip "bomb" of a few megabytes can inflate to
// terabytes (deflate reaches about 1032:1, and nested or concatenated
// members multiply nothing but the time spent); without a ceiling the
// counter would spend minutes of CPU on it.
const (
	// DefaultMaxInflated is well above the largest registry extract
	// (a few GiB of text) yet bounds the CPU time to about a minute.
	DefaultMaxInflated = limits.DefaultMaxInflated
	// DefaultMaxInflateRatio: registry text compresses about 5-10:1 and
	// space-padded fixed-width records rarely beyond 30:1; 200:1 leaves a
	// wide margin, while a bomb (about 1000:1) is stopped after a few MiB.
	DefaultMaxInflateRatio = limits.DefaultMaxInflateRatio
	// InflateRatioFloor is how much must have been inflated before the
	// ratio is checked, so that a small file with a long run of one byte
	// at its start is not refused.
	InflateRatioFloor = 1 << 20
)

// InflateLimits returns the ceilings in effect: MaxInflated and
// MaxInflateRatio, or their defaults.
func (s CountSpec) InflateLimits() (maxInflated int64, maxRatio int) {
	maxInflated, maxRatio = s.MaxInflated, s.MaxInflateRatio
	if maxInflated <= 0 {
		maxInflated = DefaultMaxInflated
	}
	if maxRatio <= 0 {
		maxRatio = DefaultMaxInflateRatio
	}
	return maxInflated, maxRatio
}

// CountResult is what a Counter found. Problems are content problems that
// disprove the file's integrity (the file should not be accepted as
// verified); Warnings are worth logging but prove nothing. Neither ever
// quotes record contents.
type CountResult struct {
	// Records is Lines minus the header line (if Header is set and the
	// file has a line) and minus the trailer line (if Trailer is set and
	// a line is left for it).
	Records int64
	// Declared is the record count declared by the trailer, else by the
	// header, or -1 if neither declares one. Both are compared with
	// Records.
	Declared int64
	// DeclaredBy is "trailer", "header" or "".
	DeclaredBy string
	// Lines is the number of lines: an empty file has none, and a final
	// "\n" does not start another.
	Lines int64
	// CRLF reports that at least one line ends in "\r\n". Files that mix
	// "\r\n" and "\n" get an ErrMixedEndings warning.
	CRLF bool
	// FinalNewline reports that the file is non-empty and ends in "\n".
	FinalNewline bool
	// Problems, e.g. "line 17: length 97 bytes, want 120".
	Problems []string
	// Warnings, e.g. mixed line endings.
	Warnings []string
}

// Counter counts the records of a file as it streams through. It is an
// io.Writer meant to sit beside the hash in the transfer pipeline; Write
// never fails on content, it only records problems for Result.
//
// Lines are split on '\n'; a '\r' ending a line (before its '\n' or at the
// end of the input) is not part of it for matching and length. Bytes are
// never decoded, so UTF-8, Big5 and any other ASCII-compatible encoding in
// which 0x0A is always a line feed are counted correctly, and RecordLength
// is in bytes.
//
// Call Close when the input ends, then Result. In Gzip mode Close must be
// called, or the decompressor goroutine is leaked. A Counter is not safe for
// concurrent use by multiple goroutines. The zero Counter counts plain lines
// with no header, trailer or record length.
type Counter struct {
	s      scanner
	gzip   bool
	closed bool

	maxInflated int64 // Gzip mode: the ceilings in effect
	maxRatio    int

	// Gzip mode: Write feeds pw; a goroutine reads the other end,
	// decompresses and feeds s.
	mu     sync.Mutex // guards s and gzErr while the goroutine runs
	pw     *io.PipeWriter
	done   chan struct{} // closed when the goroutine has finished
	gzErr  error         // why decompression stopped early, if it did
	gzIn   int64         // compressed bytes written
	gzDead bool          // decompression has stopped; discard input
}

// NewCounter returns a Counter for files laid out as spec says.
func NewCounter(spec CountSpec) *Counter {
	c := &Counter{gzip: spec.Gzip}
	c.maxInflated, c.maxRatio = spec.InflateLimits()
	c.s = scanner{header: spec.Header, trailer: spec.Trailer}
	if spec.RecordLength > 0 {
		c.s.recLen = int64(spec.RecordLength)
	}
	if spec.Header != nil {
		c.s.first = make([]byte, 0, MaxMatchLine+1)
	}
	if spec.Trailer != nil {
		c.s.last = make([]byte, 0, MaxMatchLine+1)
	}
	return c
}

// Write counts p. It returns len(p), nil, or ErrClosed after Close.
func (c *Counter) Write(p []byte) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	if !c.gzip {
		c.s.write(p)
		return len(p), nil
	}
	c.gzIn += int64(len(p))
	if c.gzDead || len(p) == 0 {
		// An empty write would reach the decompressor's bufio.Reader as
		// an empty read, and enough of those are an error there.
		return len(p), nil
	}
	c.startGzip()
	if _, err := c.pw.Write(p); err != nil {
		c.gzDead = true // the decompressor stopped; gzErr says why
	}
	return len(p), nil
}

// Close marks the end of the input. In Gzip mode it waits until everything
// written has been decompressed and counted. It always returns nil: content
// problems, including corrupt or truncated gzip data, go to Result.
func (c *Counter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.gzip {
		c.startGzip()
		c.pw.Close()
		<-c.done
	}
	return nil
}

// Result reports what has been counted. After Close it is final; before
// Close it describes the input so far as if it ended there (in Gzip mode
// with a problem saying so).
func (c *Counter) Result() CountResult {
	if !c.gzip {
		return c.s.result(nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var gz []string
	if c.gzErr != nil {
		gz = append(gz, gzipProblem(c.gzErr, c.gzIn))
	}
	if !c.closed {
		gz = append(gz, "gzip: counter not closed, counts cover only the data decompressed so far")
	}
	return c.s.result(gz)
}

// startGzip starts the decompressor goroutine if it is not running yet.
func (c *Counter) startGzip() {
	if c.pw != nil {
		return
	}
	pr, pw := io.Pipe()
	c.pw = pw
	c.done = make(chan struct{})
	go c.inflate(pr)
}

// errInflateStopped unblocks Write once decompression has stopped.
var errInflateStopped = errors.New("decompression stopped")

// errGzipEmpty: the input ended before any gzip data.
var errGzipEmpty = errors.New("empty input")

// inflate is the decompressor goroutine.
func (c *Counter) inflate(pr *io.PipeReader) {
	defer close(c.done)
	err := c.decompress(pr)
	pr.CloseWithError(errInflateStopped)
	if err != nil {
		c.mu.Lock()
		c.gzErr = err
		c.mu.Unlock()
	}
}

// inflateLimitError: decompression stopped at a ceiling.
type inflateLimitError struct {
	ratio   bool  // the ratio ceiling, else the size ceiling
	limit   int64 // the ceiling
	out, in int64 // bytes inflated (and counted), compressed bytes read
}

func (e *inflateLimitError) Error() string {
	if e.ratio {
		return fmt.Sprintf("%d bytes inflated from %d compressed bytes, more than %d:1, the ceiling set by records.max_inflate_ratio; decompression stopped there",
			e.out, e.in, e.limit)
	}
	return fmt.Sprintf("more than %s after decompression, the ceiling set by records.max_inflated; decompression stopped there and records were counted up to it",
		FormatBytes(e.limit))
}

// countingReader counts the compressed bytes the decompressor consumed. It
// is an io.ByteReader, so gzip and flate read from it directly and the
// count is exact: it depends only on the stream, never on how the input
// was split into writes, so a scrub stops where ingest stopped.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// decompress feeds the decompressed stream from r to the scanner, up to
// the ceilings.
func (c *Counter) decompress(r io.Reader) error {
	// A large read buffer means fewer hand-offs through the pipe.
	in := &countingReader{r: bufio.NewReaderSize(r, 64<<10)}
	zr, err := gzip.NewReader(in)
	if err == io.EOF {
		return errGzipEmpty
	}
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	var out int64
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			if int64(n) > c.maxInflated-out {
				c.mu.Lock()
				c.s.write(buf[:c.maxInflated-out])
				c.mu.Unlock()
				return &inflateLimitError{limit: c.maxInflated, out: c.maxInflated, in: in.n}
			}
			c.mu.Lock()
			c.s.write(buf[:n])
			c.mu.Unlock()
			out += int64(n)
			if out > InflateRatioFloor && float64(out) > float64(c.maxRatio)*float64(in.n) {
				return &inflateLimitError{ratio: true, limit: int64(c.maxRatio), out: out, in: in.n}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// FormatBytes writes n in the largest binary unit that divides it (64 GiB,
// 1536 KiB), else in bytes.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// gzipProblem describes why decompression stopped; in is the number of
// compressed bytes received.
func gzipProblem(err error, in int64) string {
	var corrupt flate.CorruptInputError
	var limit *inflateLimitError
	switch {
	case errors.As(err, &limit):
		return "gzip: " + limit.Error()
	case errors.Is(err, errGzipEmpty):
		return "gzip: input is empty, want at least one gzip member"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("gzip: stream truncated after %d compressed bytes", in)
	case errors.Is(err, gzip.ErrChecksum):
		return "gzip: CRC-32 or length in a member trailer does not match the data"
	case errors.Is(err, gzip.ErrHeader):
		return "gzip: invalid member header: not gzip data, or data after the last member"
	case errors.As(err, &corrupt):
		return fmt.Sprintf("gzip: corrupt deflate data at byte %d of a member", int64(corrupt))
	}
	return "gzip: " + err.Error()
}

// scanner is the line-counting state machine. It keeps counters and the
// bounded first and last lines only; nothing in it grows with the input.
type scanner struct {
	header, trailer *regexp.Regexp
	recLen          int64 // 0: not fixed-width

	lines   int64 // lines started so far
	midLine bool  // the last byte was not '\n' (false before any bytes)
	curLen  int64 // bytes of the current line so far, without '\n'
	curCR   bool  // the current line's last byte so far is '\r'

	first    []byte // start of line 1 (Header only), up to MaxMatchLine+1 bytes
	firstLen int64  // length of line 1 so far
	firstCR  bool   // line 1 ends in '\r' so far
	last     []byte // start of the current line (Trailer only), same bound

	lfLines, crlfLines int64 // lines terminated by "\n" and by "\r\n"
	firstLF, firstCRLF int64 // the first such line numbers, 0 if none

	badLines    int64 // record lines of the wrong length, excluding the current line
	firstBad    int64 // the first one's line number
	firstBadLen int64 // and its length
}

// write scans p. It calls bytes.IndexByte once per line and allocates
// nothing.
func (s *scanner) write(p []byte) {
	for len(p) > 0 {
		if !s.midLine {
			s.startLine()
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.extend(p)
			return
		}
		s.extend(p[:i])
		s.endLine()
		p = p[i+1:]
	}
}

// startLine begins a new line. The previous line, now known not to be the
// last, is a record unless it is the header.
func (s *scanner) startLine() {
	if s.recLen > 0 && s.lines > 0 && (s.lines > 1 || s.header == nil) {
		if n := contentLen(s.curLen, s.curCR); n != s.recLen {
			if s.badLines == 0 {
				s.firstBad, s.firstBadLen = s.lines, n
			}
			s.badLines++
		}
	}
	s.lines++
	s.curLen, s.curCR, s.midLine = 0, false, true
	if s.trailer != nil {
		s.last = s.last[:0]
	}
}

// extend adds seg, which has no '\n', to the current line.
func (s *scanner) extend(seg []byte) {
	if len(seg) == 0 {
		return
	}
	s.curLen += int64(len(seg))
	s.curCR = seg[len(seg)-1] == '\r'
	if s.lines == 1 {
		s.firstLen, s.firstCR = s.curLen, s.curCR
		if s.header != nil {
			s.first = appendBounded(s.first, seg)
		}
	}
	if s.trailer != nil {
		s.last = appendBounded(s.last, seg)
	}
}

// endLine ends the current line at a '\n'.
func (s *scanner) endLine() {
	s.midLine = false
	if s.curCR {
		if s.crlfLines++; s.firstCRLF == 0 {
			s.firstCRLF = s.lines
		}
	} else {
		if s.lfLines++; s.firstLF == 0 {
			s.firstLF = s.lines
		}
	}
}

// result reports the counts as if the input ended now, without changing
// s. Problems start with pre.
func (s *scanner) result(pre []string) CountResult {
	r := CountResult{
		Lines:        s.lines,
		Declared:     -1,
		CRLF:         s.crlfLines > 0,
		FinalNewline: s.lines > 0 && !s.midLine,
		Problems:     pre,
	}
	bad, firstBad, firstBadLen := s.badLines, s.firstBad, s.firstBadLen
	var hdr, trl int64
	if s.header != nil && s.lines > 0 {
		hdr = 1
	}
	if s.lines > hdr { // the last line is not the header
		if s.trailer != nil {
			trl = 1
		} else if n := contentLen(s.curLen, s.curCR); s.recLen > 0 && n != s.recLen {
			if bad == 0 {
				firstBad, firstBadLen = s.lines, n
			}
			bad++
		}
	}
	r.Records = s.lines - hdr - trl

	var hdrCount, trlCount int64 = -1, -1
	if s.header != nil {
		if s.lines == 0 {
			r.problem("header: file is empty, want a first line matching `%s`", s.header)
		} else {
			hdrCount = r.match("header", 1, s.first, s.firstLen, s.firstCR, s.header)
		}
	}
	if bad > 0 {
		r.problem("line %d: length %d bytes, want %d", firstBad, firstBadLen, s.recLen)
		r.problem("fixed width: %d of %d record lines are not %d bytes long", bad, r.Records, s.recLen)
	}
	if s.trailer != nil {
		switch {
		case trl == 1:
			trlCount = r.match("trailer", s.lines, s.last, s.curLen, s.curCR, s.trailer)
		case s.lines == 0:
			r.problem("trailer: file is empty, want a last line matching `%s`", s.trailer)
		default:
			r.problem("trailer: the only line is the header, want a last line matching `%s`", s.trailer)
		}
	}
	switch {
	case trlCount >= 0:
		r.Declared, r.DeclaredBy = trlCount, "trailer"
	case hdrCount >= 0:
		r.Declared, r.DeclaredBy = hdrCount, "header"
	}
	if hdrCount >= 0 && hdrCount != r.Records {
		r.problem("header: declares %d records, counted %d", hdrCount, r.Records)
	}
	if trlCount >= 0 && trlCount != r.Records {
		r.problem("trailer: declares %d records, counted %d", trlCount, r.Records)
	}
	if s.crlfLines > 0 && s.lfLines > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%v: %d CRLF (first at line %d), %d LF (first at line %d)",
			ErrMixedEndings, s.crlfLines, s.firstCRLF, s.lfLines, s.firstLF))
	}
	return r
}

// match matches line n, whose first bytes are in buf and whose length so
// far is length, against re, recording a problem if it does not match. It
// returns the declared count, or -1 if there is none.
func (r *CountResult) match(what string, n int64, buf []byte, length int64, cr bool, re *regexp.Regexp) int64 {
	l := contentLen(length, cr)
	if l > MaxMatchLine {
		r.problem("%s: line %d is %d bytes, longer than the %d bytes kept for matching `%s`", what, n, l, MaxMatchLine, re)
		return -1
	}
	line := buf[:l] // buf holds min(length, MaxMatchLine+1) >= l bytes
	m := re.FindSubmatchIndex(line)
	if m == nil {
		r.problem("%s: line %d does not match `%s`", what, n, re)
		return -1
	}
	if len(m) < 4 || m[2] < 0 {
		return -1 // no count group, or it took no part in the match
	}
	count, err := parseDecimal(bytes.Trim(line[m[2]:m[3]], " "))
	if err != nil {
		r.problem("%s: line %d: declared record count %v", what, n, err)
		return -1
	}
	return count
}

func (r *CountResult) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// contentLen is the length of a line without a final '\r'.
func contentLen(length int64, cr bool) int64 {
	if cr {
		return length - 1
	}
	return length
}

// appendBounded appends as much of src to dst as fits in dst's capacity,
// so it never allocates.
func appendBounded(dst, src []byte) []byte {
	if room := cap(dst) - len(dst); len(src) > room {
		src = src[:room]
	}
	return append(dst, src...)
}
