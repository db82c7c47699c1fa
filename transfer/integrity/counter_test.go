package integrity

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	hdrRE = regexp.MustCompile(`^HDR\|(\d+)$`)
	trlRE = regexp.MustCompile(`^TRL\|(\d+)$`)
)

// count feeds input to a new Counter in chunks of size chunk (all at once
// if chunk <= 0), closes it and returns the result.
func count(t testing.TB, spec CountSpec, input []byte, chunk int) CountResult {
	t.Helper()
	c := NewCounter(spec)
	if chunk <= 0 {
		chunk = len(input) + 1
	}
	for p := input; len(p) > 0; {
		n := min(chunk, len(p))
		if w, err := c.Write(p[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v, want %d, nil", w, err, n)
		}
		p = p[n:]
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return c.Result()
}

// gzipWriters saves the fuzzer from allocating a compressor per input.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// gz compresses each part as a separate gzip member.
func gz(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	for _, p := range parts {
		w.Reset(&b)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// naive counts lines and records the obvious, allocating way, as a
// reference for the streaming Counter.
func naive(spec CountSpec, data []byte) (lines, records, bad, firstBad int64) {
	if len(data) == 0 {
		return 0, 0, 0, 0
	}
	parts := bytes.Split(data, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	lines = int64(len(parts))
	lo, hi := 0, len(parts)
	if spec.Header != nil && hi > lo {
		lo++
	}
	if spec.Trailer != nil && hi > lo {
		hi--
	}
	records = int64(hi - lo)
	for i := lo; i < hi; i++ {
		l := bytes.TrimSuffix(parts[i], []byte("\r"))
		if spec.RecordLength > 0 && len(l) != spec.RecordLength {
			if bad++; firstBad == 0 {
				firstBad = int64(i + 1)
			}
		}
	}
	return lines, records, bad, firstBad
}

type counterCase struct {
	name  string
	spec  CountSpec
	input string
	want  CountResult
}

var counterCases = []counterCase{
	{name: "empty", input: "", want: CountResult{Declared: -1}},
	{name: "LF", input: "a\nb\nc\n", want: CountResult{Records: 3, Lines: 3, Declared: -1, FinalNewline: true}},
	{name: "CRLF", input: "a\r\nb\r\n", want: CountResult{Records: 2, Lines: 2, Declared: -1, CRLF: true, FinalNewline: true}},
	{name: "no final newline", input: "a\nb", want: CountResult{Records: 2, Lines: 2, Declared: -1}},
	{name: "no final newline CRLF", input: "a\r\nb", want: CountResult{Records: 2, Lines: 2, Declared: -1, CRLF: true}},
	{name: "lone newline", input: "\n", want: CountResult{Records: 1, Lines: 1, Declared: -1, FinalNewline: true}},
	{name: "blank lines", input: "\n\r\n\n", want: CountResult{Records: 3, Lines: 3, Declared: -1, CRLF: true, FinalNewline: true,
		Warnings: []string{"mixed line endings: 1 CRLF (first at line 2), 2 LF (first at line 1)"}}},
	{name: "bare CR is content", input: "a\rb\nc\r", want: CountResult{Records: 2, Lines: 2, Declared: -1}},
	{name: "mixed endings", input: "a\r\nb\nc\r\nd", want: CountResult{Records: 4, Lines: 4, Declared: -1, CRLF: true,
		Warnings: []string{"mixed line endings: 2 CRLF (first at line 1), 1 LF (first at line 2)"}}},
	{
		name: "header and trailer", spec: CountSpec{Header: hdrRE, Trailer: trlRE},
		input: "HDR|2\r\nx\r\ny\r\nTRL|2\r\n",
		want:  CountResult{Records: 2, Lines: 4, Declared: 2, DeclaredBy: "trailer", CRLF: true, FinalNewline: true},
	},
	{
		name: "header declares", spec: CountSpec{Header: hdrRE},
		input: "HDR|0002\nx\ny",
		want:  CountResult{Records: 2, Lines: 3, Declared: 2, DeclaredBy: "header"},
	},
	{
		name: "trailer only", spec: CountSpec{Trailer: trlRE},
		input: "x\ny\nTRL|2",
		want:  CountResult{Records: 2, Lines: 3, Declared: 2, DeclaredBy: "trailer"},
	},
	{
		name: "trailer declared mismatch", spec: CountSpec{Trailer: trlRE},
		input: "x\nTRL|5\n",
		want: CountResult{Records: 1, Lines: 2, Declared: 5, DeclaredBy: "trailer", FinalNewline: true,
			Problems: []string{"trailer: declares 5 records, counted 1"}},
	},
	{
		name: "header and trailer disagree", spec: CountSpec{Header: hdrRE, Trailer: trlRE},
		input: "HDR|3\nx\nTRL|1\n",
		want: CountResult{Records: 1, Lines: 3, Declared: 1, DeclaredBy: "trailer", FinalNewline: true,
			Problems: []string{"header: declares 3 records, counted 1"}},
	},
	{
		name: "header does not match", spec: CountSpec{Header: hdrRE},
		input: "HDX|1\nx\n",
		want: CountResult{Records: 1, Lines: 2, Declared: -1, FinalNewline: true,
			Problems: []string{"header: line 1 does not match `^HDR\\|(\\d+)$`"}},
	},
	{
		name: "trailer does not match", spec: CountSpec{Trailer: trlRE},
		input: "x\ny\n",
		want: CountResult{Records: 1, Lines: 2, Declared: -1, FinalNewline: true,
			Problems: []string{"trailer: line 2 does not match `^TRL\\|(\\d+)$`"}},
	},
	{
		name: "trailer without count group", spec: CountSpec{Trailer: regexp.MustCompile(`^END$`)},
		input: "x\nEND\n",
		want:  CountResult{Records: 1, Lines: 2, Declared: -1, FinalNewline: true},
	},
	{
		name: "optional count group absent", spec: CountSpec{Trailer: regexp.MustCompile(`^END(?:\|(\d+))?$`)},
		input: "x\nEND",
		want:  CountResult{Records: 1, Lines: 2, Declared: -1},
	},
	{
		name: "padded count", spec: CountSpec{Trailer: regexp.MustCompile(`^TRL(.{6})$`)},
		input: "x\nTRL     1\n",
		want:  CountResult{Records: 1, Lines: 2, Declared: 1, DeclaredBy: "trailer", FinalNewline: true},
	},
	{
		name: "count not decimal", spec: CountSpec{Trailer: regexp.MustCompile(`^TRL(.*)$`)},
		input: "x\nTRL1x\n",
		want: CountResult{Records: 1, Lines: 2, Declared: -1, FinalNewline: true,
			Problems: []string{"trailer: line 2: declared record count not a decimal number, want digits 0-9"}},
	},
	{
		name: "count overflow", spec: CountSpec{Trailer: trlRE},
		input: "TRL|99999999999999999999\n",
		want: CountResult{Records: 0, Lines: 1, Declared: -1, FinalNewline: true,
			Problems: []string{"trailer: line 1: declared record count overflows int64, want at most 9223372036854775807"}},
	},
	{
		name: "empty with header and trailer", spec: CountSpec{Header: hdrRE, Trailer: trlRE},
		input: "",
		want: CountResult{Declared: -1, Problems: []string{
			"header: file is empty, want a first line matching `^HDR\\|(\\d+)$`",
			"trailer: file is empty, want a last line matching `^TRL\\|(\\d+)$`",
		}},
	},
	{
		name: "only a header", spec: CountSpec{Header: hdrRE, Trailer: trlRE},
		input: "HDR|0\n",
		want: CountResult{Lines: 1, Declared: 0, DeclaredBy: "header", FinalNewline: true, Problems: []string{
			"trailer: the only line is the header, want a last line matching `^TRL\\|(\\d+)$`",
		}},
	},
	{
		name: "fixed width good", spec: CountSpec{RecordLength: 5},
		input: "abcde\nfghij\r\n12345",
		want:  CountResult{Records: 3, Lines: 3, Declared: -1, CRLF: true, Warnings: []string{"mixed line endings: 1 CRLF (first at line 2), 1 LF (first at line 1)"}},
	},
	{
		name: "fixed width bad", spec: CountSpec{RecordLength: 5},
		input: "abcde\r\nabc\r\nabcdef\r\nabcde\r\n",
		want: CountResult{Records: 4, Lines: 4, Declared: -1, CRLF: true, FinalNewline: true, Problems: []string{
			"line 2: length 3 bytes, want 5",
			"fixed width: 2 of 4 record lines are not 5 bytes long",
		}},
	},
	{
		name: "fixed width excludes header and trailer", spec: CountSpec{Header: hdrRE, Trailer: trlRE, RecordLength: 5},
		input: "HDR|2\nabcde\n12345\nTRL|2\n",
		want:  CountResult{Records: 2, Lines: 4, Declared: 2, DeclaredBy: "trailer", FinalNewline: true},
	},
	{
		name: "fixed width bad last line", spec: CountSpec{RecordLength: 5},
		input: "abcde\nab",
		want: CountResult{Records: 2, Lines: 2, Declared: -1, Problems: []string{
			"line 2: length 2 bytes, want 5",
			"fixed width: 1 of 2 record lines are not 5 bytes long",
		}},
	},
	{
		name: "fixed width blank line", spec: CountSpec{RecordLength: 5},
		input: "abcde\n\nabcde\n",
		want: CountResult{Records: 3, Lines: 3, Declared: -1, FinalNewline: true, Problems: []string{
			"line 2: length 0 bytes, want 5",
			"fixed width: 1 of 3 record lines are not 5 bytes long",
		}},
	},
	{
		name: "fixed width with bad header", spec: CountSpec{Header: hdrRE, RecordLength: 3},
		input: "HEADER\nabc\nab\n",
		want: CountResult{Records: 2, Lines: 3, Declared: -1, FinalNewline: true, Problems: []string{
			"header: line 1 does not match `^HDR\\|(\\d+)$`",
			"line 3: length 2 bytes, want 3",
			"fixed width: 1 of 2 record lines are not 3 bytes long",
		}},
	},
	{
		name: "trailer too long", spec: CountSpec{Trailer: regexp.MustCompile(`^T`)},
		input: "x\nT" + strings.Repeat("0", MaxMatchLine) + "\n",
		want: CountResult{Records: 1, Lines: 2, Declared: -1, FinalNewline: true, Problems: []string{
			"trailer: line 2 is 4097 bytes, longer than the 4096 bytes kept for matching `^T`",
		}},
	},
	{
		name: "trailer at the limit with CRLF", spec: CountSpec{Trailer: regexp.MustCompile(`^T0+$`)},
		input: "x\r\nT" + strings.Repeat("0", MaxMatchLine-1) + "\r\n",
		want:  CountResult{Records: 1, Lines: 2, Declared: -1, CRLF: true, FinalNewline: true},
	},
	{
		name: "header too long", spec: CountSpec{Header: regexp.MustCompile(`^H`)},
		input: "H" + strings.Repeat("0", 2*MaxMatchLine) + "\nx\n",
		want: CountResult{Records: 1, Lines: 2, Declared: -1, FinalNewline: true, Problems: []string{
			"header: line 1 is 8193 bytes, longer than the 4096 bytes kept for matching `^H`",
		}},
	},
	{
		name: "long record lines before trailer", spec: CountSpec{Trailer: trlRE},
		input: strings.Repeat("r", 3*MaxMatchLine) + "\n" + strings.Repeat("s", MaxMatchLine+7) + "\nTRL|2",
		want:  CountResult{Records: 2, Lines: 3, Declared: 2, DeclaredBy: "trailer"},
	},
}

func TestCounter(t *testing.T) {
	for _, tt := range counterCases {
		t.Run(tt.name, func(t *testing.T) {
			got := count(t, tt.spec, []byte(tt.input), 0)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Result:\n got %#v\nwant %#v", got, tt.want)
			}
			lines, records, _, _ := naive(tt.spec, []byte(tt.input))
			if got.Lines != lines || got.Records != records {
				t.Errorf("Lines, Records = %d, %d; reference says %d, %d", got.Lines, got.Records, lines, records)
			}
		})
	}
}

// TestCounterChunked feeds every case in chunks of 1, 2, 3 and 7 bytes, so
// that every line ending, "\r\n" pair and header/trailer is split at every
// possible place, and gzip-compressed the same way.
func TestCounterChunked(t *testing.T) {
	for _, tt := range counterCases {
		t.Run(tt.name, func(t *testing.T) {
			whole := count(t, tt.spec, []byte(tt.input), 0)
			gzSpec := tt.spec
			gzSpec.Gzip = true
			compressed := gz(t, []byte(tt.input))
			for _, chunk := range []int{1, 2, 3, 7} {
				if got := count(t, tt.spec, []byte(tt.input), chunk); !reflect.DeepEqual(got, whole) {
					t.Errorf("chunks of %d:\n got %#v\nwant %#v", chunk, got, whole)
				}
				if got := count(t, gzSpec, compressed, chunk); !reflect.DeepEqual(got, whole) {
					t.Errorf("gzip, chunks of %d:\n got %#v\nwant %#v", chunk, got, whole)
				}
			}
		})
	}
}

// TestCounterBig5 counts Big5 records, including user-defined code points
// and trail bytes that are ASCII ('\\', '@', '|'), by bytes.
func TestCounterBig5(t *testing.T) {
	names := [][]byte{
		[]byte("\xa4\xa4\xa4\xe5\xa6\x57\xa6\x72\xa1\x40"), // 中文名字 + ideographic space
		[]byte("\x81\x40\x8d\xfe\xa0\xfe\xa1\x40\xb3\x5c"), // UDC 0x8140, 0x8DFE, 0xA0FE; U+3000; 許 (trail '\')
		[]byte("\xc6\xa1\xc7\x7c\xc8\xfe\xa5\x5c\xa4\x40"), // UDC 0xC6A1, 0xC77C (trail '|'), 0xC8FE; 功; 一
		[]byte("\xfa\x40\xfb\x7e\xfe\xfe\xaf\x5c\xa6\x5c"), // UDC 0xFA40, 0xFB7E, 0xFEFE; 珮 (trail '\'), 吋
	}
	var file bytes.Buffer
	file.WriteString("HDR|000004\r\n")
	for i, n := range names {
		// 8-byte id, 10 bytes of Big5 (5 characters), 2-byte code: 20 bytes.
		file.WriteString("A00000" + string(rune('1'+i)) + "|")
		file.Write(n)
		file.WriteString("|1\r\n")
	}
	file.WriteString("TRL|000004\r\n")
	input := file.Bytes()

	spec := CountSpec{Header: hdrRE, Trailer: trlRE, RecordLength: 20}
	want := CountResult{Records: 4, Lines: 6, Declared: 4, DeclaredBy: "trailer", CRLF: true, FinalNewline: true}
	if got := count(t, spec, input, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("Big5:\n got %#v\nwant %#v", got, want)
	}
	for _, chunk := range []int{1, 2, 3, 7} {
		if got := count(t, spec, input, chunk); !reflect.DeepEqual(got, want) {
			t.Errorf("Big5 chunks of %d:\n got %#v\nwant %#v", chunk, got, want)
		}
	}

	// Shorten record 3 by one double-byte character: 18 bytes but 14 runes
	// if (wrongly) decoded; the length must be reported in bytes.
	bad := bytes.Replace(input, []byte("\xa5\x5c"), nil, 1)
	got := count(t, spec, bad, 0)
	wantProblems := []string{
		"line 4: length 18 bytes, want 20",
		"fixed width: 1 of 4 record lines are not 20 bytes long",
	}
	if !reflect.DeepEqual(got.Problems, wantProblems) || got.Records != 4 {
		t.Errorf("short Big5 record: Records %d, Problems %q, want 4, %q", got.Records, got.Problems, wantProblems)
	}
	for _, p := range got.Problems {
		if strings.Contains(p, "A000003") || strings.ContainsAny(p, "\xc6\xa1") {
			t.Errorf("problem %q quotes record content", p)
		}
	}
}

func TestCounterGzip(t *testing.T) {
	spec := CountSpec{Trailer: trlRE, Gzip: true}
	data := []byte("a\nb\nTRL|2\n")
	good := gz(t, data)
	multi := gz(t, []byte("a\nb"), []byte("b\nTRL|2\n"), nil)

	corruptCRC := bytes.Clone(good)
	corruptCRC[len(corruptCRC)-8] ^= 0xff
	corruptData := bytes.Clone(gz(t, bytes.Repeat([]byte("0123456789\n"), 1000)))
	corruptData[len(corruptData)/2] ^= 0xff

	tests := []struct {
		name     string
		input    []byte
		records  int64
		problems []string
	}{
		{"single member", good, 2, nil},
		{"multi member", multi, 2, nil},
		{"empty members", gz(t, nil, data, nil), 2, nil},
		{"empty input", nil, 0, []string{
			"gzip: input is empty, want at least one gzip member",
			"trailer: file is empty, want a last line matching `^TRL\\|(\\d+)$`",
		}},
		{"not gzip", data, 0, []string{
			"gzip: invalid member header: not gzip data, or data after the last member",
			"trailer: file is empty, want a last line matching `^TRL\\|(\\d+)$`",
		}},
		{"trailing garbage", append(bytes.Clone(good), "this is not gzip data"...), 2, []string{
			"gzip: invalid member header: not gzip data, or data after the last member",
		}},
		{"truncated", good[:len(good)-3], 2, []string{
			"gzip: stream truncated after " + itoa(len(good)-3) + " compressed bytes",
		}},
		{"bad CRC", corruptCRC, 2, []string{
			"gzip: CRC-32 or length in a member trailer does not match the data",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := count(t, spec, tt.input, 0)
			if got.Records != tt.records || !reflect.DeepEqual(got.Problems, tt.problems) {
				t.Errorf("Records %d, Problems %q; want %d, %q", got.Records, got.Problems, tt.records, tt.problems)
			}
			for _, chunk := range []int{1, 3, 7} {
				if c := count(t, spec, tt.input, chunk); !reflect.DeepEqual(c, got) {
					t.Errorf("chunks of %d:\n got %#v\nwant %#v", chunk, c, got)
				}
			}
		})
	}

	t.Run("corrupt deflate", func(t *testing.T) {
		got := count(t, CountSpec{Gzip: true}, corruptData, 0)
		if len(got.Problems) != 1 || !strings.HasPrefix(got.Problems[0], "gzip: ") {
			t.Errorf("Problems %q, want one gzip problem", got.Problems)
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		c := NewCounter(spec)
		if _, err := c.Write(good[:10]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(nil); err != nil {
			t.Fatal(err)
		}
		r := c.Result()
		if n := len(r.Problems); n == 0 || !strings.Contains(r.Problems[0], "not closed") {
			t.Errorf("Result before Close: %q, want a not-closed problem first", r.Problems)
		}
		if _, err := c.Write(good[10:]); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close: %v, want ErrClosed", err)
		}
		if r := c.Result(); r.Records != 2 || r.Problems != nil {
			t.Errorf("Result after Close: %#v", r)
		}
	})

	t.Run("many empty writes", func(t *testing.T) {
		c := NewCounter(spec)
		for i := 0; i < 1000; i++ {
			c.Write(nil)
		}
		c.Write(good)
		c.Close()
		if r := c.Result(); r.Records != 2 || r.Problems != nil {
			t.Errorf("Result: %#v", r)
		}
	})

	t.Run("writes after corruption do not block", func(t *testing.T) {
		c := NewCounter(CountSpec{Gzip: true})
		junk := bytes.Repeat([]byte("not gzip "), 1<<16)
		for i := 0; i < 10; i++ {
			if n, err := c.Write(junk); n != len(junk) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		c.Close()
		if r := c.Result(); len(r.Problems) != 1 {
			t.Errorf("Problems %q, want one", r.Problems)
		}
	})
}

func itoa(n int) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestCounterPlainLifecycle(t *testing.T) {
	c := new(Counter) // the zero Counter works
	c.Write([]byte("a\nb"))
	if r := c.Result(); r.Lines != 2 || r.FinalNewline {
		t.Errorf("Result before Close: %#v", r)
	}
	c.Write([]byte("\n"))
	if r := c.Result(); r.Lines != 2 || !r.FinalNewline {
		t.Errorf("Result before Close: %#v", r)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if r := c.Result(); r.Lines != 2 {
		t.Errorf("Result after Close: %#v", r)
	}
}

func TestCounterNoAllocs(t *testing.T) {
	buf := benchInput()
	for _, spec := range []CountSpec{
		{},
		{Header: hdrRE, Trailer: trlRE, RecordLength: 99},
	} {
		c := NewCounter(spec)
		if n := testing.AllocsPerRun(20, func() { c.Write(buf) }); n != 0 {
			t.Errorf("spec %+v: %.1f allocations per 1 MiB Write, want 0", spec, n)
		}
	}
}

// benchInput is 1 MiB of 100-byte lines (99 bytes and "\n"); lines run
// across the end of the buffer, as they do across real writes.
func benchInput() []byte {
	line := []byte(strings.Repeat("ABCDEFGHI|", 10)[:99] + "\n")
	buf := make([]byte, 0, 1<<20)
	for len(buf) < 1<<20 {
		buf = append(buf, line[:min(len(line), 1<<20-len(buf))]...)
	}
	return buf
}

func BenchmarkCounterLines(b *testing.B) {
	buf := benchInput()
	c := NewCounter(CountSpec{Trailer: trlRE})
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		c.Write(buf)
	}
}

func BenchmarkCounterFixedWidth(b *testing.B) {
	buf := benchInput()
	c := NewCounter(CountSpec{Header: hdrRE, Trailer: trlRE, RecordLength: 99})
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		c.Write(buf)
	}
	if r := c.Result(); r.Problems == nil {
		b.Fatal("want problems: the first line is no header") // keep the work observable
	}
}

func BenchmarkCounterGzip(b *testing.B) {
	plain := bytes.Repeat(benchInput(), 16)
	compressed := gz(b, plain)
	b.SetBytes(int64(len(plain))) // throughput of decompressed data
	b.ReportAllocs()
	for b.Loop() {
		c := NewCounter(CountSpec{Trailer: trlRE, Gzip: true})
		for p := compressed; len(p) > 0; {
			n := min(len(p), 1<<20)
			c.Write(p[:n])
			p = p[n:]
		}
		c.Close()
	}
}

func FuzzCounter(f *testing.F) {
	f.Add([]byte("HDR|2\r\nabc\r\ndef\r\nTRL|2\r\n"), uint8(3), uint8(3), uint8(3))
	f.Add([]byte("a\nb\r\nc"), uint8(1), uint8(0), uint8(0))
	f.Add([]byte("\xa4\xa4\x81\x40\n\xfe\xfe\xc6\xa1\n"), uint8(2), uint8(4), uint8(0))
	f.Add([]byte("\r\n\r\r\n\n"), uint8(7), uint8(0), uint8(2))
	f.Add([]byte("TRL|99999999999999999999"), uint8(5), uint8(0), uint8(2))
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"), uint8(1), uint8(0), uint8(4))
	f.Add([]byte("HDR|2\nab\ncd\nTRL|2\n"), uint8(6), uint8(2), uint8(11))
	f.Fuzz(func(t *testing.T, data []byte, chunk, recLen, flags uint8) {
		spec := CountSpec{RecordLength: int(recLen % 8)}
		if flags&1 != 0 {
			spec.Header = hdrRE
		}
		if flags&2 != 0 {
			spec.Trailer = trlRE
		}
		if flags&4 != 0 {
			// The raw input as gzip: mostly corrupt; must not panic or hang,
			// and chunking must not matter.
			spec.Gzip = true
			whole := count(t, spec, data, 0)
			if got := count(t, spec, data, int(chunk)+1); !reflect.DeepEqual(got, whole) {
				t.Fatalf("gzip chunks of %d:\n got %#v\nwant %#v", int(chunk)+1, got, whole)
			}
			return
		}
		whole := count(t, spec, data, 0)
		if got := count(t, spec, data, int(chunk)+1); !reflect.DeepEqual(got, whole) {
			t.Fatalf("chunks of %d:\n got %#v\nwant %#v", int(chunk)+1, got, whole)
		}
		lines, records, bad, firstBad := naive(spec, data)
		if whole.Lines != lines || whole.Records != records {
			t.Fatalf("Lines, Records = %d, %d; reference says %d, %d", whole.Lines, whole.Records, lines, records)
		}
		if bad > 0 {
			want := "line " + itoa(int(firstBad)) + ": length "
			found := false
			for _, p := range whole.Problems {
				found = found || strings.HasPrefix(p, want)
			}
			if !found {
				t.Fatalf("Problems %q, want one starting %q", whole.Problems, want)
			}
		}
		if whole.FinalNewline != (len(data) > 0 && data[len(data)-1] == '\n') {
			t.Fatalf("FinalNewline = %v", whole.FinalNewline)
		}
		if whole.CRLF != bytes.Contains(data, []byte("\r\n")) {
			t.Fatalf("CRLF = %v", whole.CRLF)
		}
		spec.Gzip = true
		if got := count(t, spec, gz(t, data), int(chunk)+1); !reflect.DeepEqual(got, whole) {
			t.Fatalf("gzip of the input:\n got %#v\nwant %#v", got, whole)
		}
		if flags&8 != 0 && len(data) > 0 {
			// A size ceiling inside the input: exactly the first limit
			// bytes are counted, however the input is split, and the
			// first problem says decompression stopped.
			limit := int(chunk)%len(data) + 1
			spec.MaxInflated = int64(limit)
			got := count(t, spec, gz(t, data), 0)
			if c := count(t, spec, gz(t, data), int(recLen)+1); !reflect.DeepEqual(c, got) {
				t.Fatalf("ceiling %d, chunks of %d:\n got %#v\nwant %#v", limit, int(recLen)+1, c, got)
			}
			plain := spec
			plain.Gzip = false
			want := count(t, plain, data[:limit], 0)
			if limit < len(data) {
				want.Problems = append([]string{"gzip: more than " + FormatBytes(int64(limit)) + " after decompression, the ceiling set by records.max_inflated; decompression stopped there and records were counted up to it"}, want.Problems...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ceiling %d:\n got %#v\nwant %#v", limit, got, want)
			}
		}
	})
}

// newlineBomb is a gzip stream of n line feeds between a header and a
// trailer declaring n records: about 1000:1, every byte a record.
func newlineBomb(t testing.TB, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write([]byte("HDR|" + itoa(n) + "\n"))
	lf := bytes.Repeat([]byte("\n"), 1<<20)
	for left := n; left > 0; left -= min(left, len(lf)) {
		w.Write(lf[:min(left, len(lf))])
	}
	w.Write([]byte("TRL|" + itoa(n) + "\n"))
	w.Close()
	return b.Bytes()
}

// TestCounterGzipBombStops: with no limit configured, the default ratio
// ceiling stops decompression of a 1000:1 stream early and says why; the
// counts cover only what was inflated.
func TestCounterGzipBombStops(t *testing.T) {
	bomb := newlineBomb(t, 16<<20) // 16 MiB inflated from about 16 KiB
	got := count(t, CountSpec{Header: hdrRE, Trailer: trlRE, Gzip: true}, bomb, 0)
	if len(got.Problems) == 0 || !strings.Contains(got.Problems[0], "records.max_inflate_ratio") {
		t.Fatalf("Problems %q, want the ratio ceiling first", got.Problems)
	}
	if got.Lines >= 16<<20 {
		t.Fatalf("%d lines counted: decompression did not stop", got.Lines)
	}
}

// TestCounterInflateCeilings: the size and ratio ceilings stop
// decompression at a point that depends only on the stream (so a scrub
// recounts exactly what ingest counted), name the configuration key, and
// leave ordinary files alone.
func TestCounterInflateCeilings(t *testing.T) {
	bomb := newlineBomb(t, 8<<20)
	spec := CountSpec{Header: hdrRE, Trailer: trlRE, Gzip: true}

	t.Run("size", func(t *testing.T) {
		s := spec
		s.MaxInflated = 3<<20 + 5
		s.MaxInflateRatio = 1032 // deflate's maximum: only the size applies
		got := count(t, s, bomb, 0)
		want := "gzip: more than 3145733 bytes after decompression, the ceiling set by records.max_inflated"
		if len(got.Problems) == 0 || !strings.HasPrefix(got.Problems[0], want) {
			t.Fatalf("Problems %q, want first %q", got.Problems, want)
		}
		// "HDR|8388608\n" is 12 bytes, then one line per byte.
		if wantLines := int64(3<<20 + 5 - 12 + 1); got.Lines != wantLines {
			t.Fatalf("Lines = %d, want %d: exactly the ceiling is counted", got.Lines, wantLines)
		}
		for _, chunk := range []int{1, 7, 4096, 1 << 16} {
			if c := count(t, s, bomb, chunk); !reflect.DeepEqual(c, got) {
				t.Fatalf("chunks of %d:\n got %#v\nwant %#v", chunk, c, got)
			}
		}
	})

	t.Run("ratio", func(t *testing.T) {
		s := spec
		s.MaxInflateRatio = 50
		got := count(t, s, bomb, 0)
		if len(got.Problems) == 0 || !strings.Contains(got.Problems[0], "more than 50:1, the ceiling set by records.max_inflate_ratio") {
			t.Fatalf("Problems %q", got.Problems)
		}
		if got.Lines > 2<<20 {
			t.Fatalf("Lines = %d: the ratio ceiling stops soon after %d bytes", got.Lines, InflateRatioFloor)
		}
		for _, chunk := range []int{1, 13, 1 << 16} {
			if c := count(t, s, bomb, chunk); !reflect.DeepEqual(c, got) {
				t.Fatalf("chunks of %d:\n got %#v\nwant %#v", chunk, c, got)
			}
		}
	})

	t.Run("within the ceilings", func(t *testing.T) {
		s := spec
		s.MaxInflated = 8<<20 + 64
		s.MaxInflateRatio = 1032
		if got := count(t, s, bomb, 0); got.Problems != nil || got.Records != 8<<20 {
			t.Fatalf("Records %d, Problems %q", got.Records, got.Problems)
		}
		// Below the floor the ratio is not checked: 1 MiB of line feeds
		// compresses about 1000:1.
		small := newlineBomb(t, InflateRatioFloor-100)
		if got := count(t, CountSpec{Gzip: true}, small, 0); got.Problems != nil {
			t.Fatalf("Problems %q", got.Problems)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		if n, r := (CountSpec{}).InflateLimits(); n != DefaultMaxInflated || r != DefaultMaxInflateRatio {
			t.Fatalf("InflateLimits() = %d, %d", n, r)
		}
		if FormatBytes(64<<30) != "64 GiB" || FormatBytes(1536<<10) != "1536 KiB" || FormatBytes(1000) != "1000 bytes" {
			t.Fatal("FormatBytes")
		}
	})
}
