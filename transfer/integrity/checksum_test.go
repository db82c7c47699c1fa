package integrity

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	hex256 = strings.Repeat("0123456789abcdef", 4)
	hex512 = strings.Repeat("0123456789abcdef", 8)
	hexMD5 = strings.Repeat("0123456789abcdef", 2)
	other  = strings.Repeat("fedcba9876543210", 4)
)

func TestAlgo(t *testing.T) {
	for _, a := range []Algo{SHA256, SHA512, MD5} {
		h := a.New()
		if h == nil {
			t.Fatalf("%s.New() = nil", a)
		}
		if got := 2 * h.Size(); got != a.hexLen() {
			t.Errorf("%s: hash size %d hex digits, hexLen %d", a, got, a.hexLen())
		}
		if !a.Valid() {
			t.Errorf("%s.Valid() = false", a)
		}
		if got, err := ParseAlgo(strings.ToUpper(string(a))); err != nil || got != a {
			t.Errorf("ParseAlgo(%q) = %q, %v", strings.ToUpper(string(a)), got, err)
		}
	}
	if SHA256.Weak() || SHA512.Weak() || !MD5.Weak() || !Algo("crc32").Weak() {
		t.Error("Weak: want only sha256 and sha512 strong")
	}
	if Algo("crc32").New() != nil || Algo("").Valid() {
		t.Error("unknown algorithm: want New() nil and Valid() false")
	}
	if _, err := ParseAlgo("sha1"); !errors.Is(err, ErrUnknownAlgo) {
		t.Errorf("ParseAlgo(sha1) error = %v, want ErrUnknownAlgo", err)
	}
}

func TestAlgoForSidecar(t *testing.T) {
	tests := []struct {
		name string
		algo Algo
		ok   bool
	}{
		{"hh_2024.txt.sha256", SHA256, true},
		{"hh_2024.txt.SHA512", SHA512, true},
		{"hh_2024.txt.md5", MD5, true},
		{"hh_2024.txt", "", false},
		{".sha256", "", false},
		{"sha256", "", false},
		{"x.sha256sum", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algo, ok := AlgoForSidecar(tt.name)
			if algo != tt.algo || ok != tt.ok {
				t.Errorf("AlgoForSidecar(%q) = %q, %v, want %q, %v", tt.name, algo, ok, tt.algo, tt.ok)
			}
		})
	}
}

func TestParseSidecar(t *testing.T) {
	tests := []struct {
		name    string
		content string
		algo    Algo
		file    string
		want    string
		err     error
		errText string // substring of the error message
	}{
		{name: "two spaces", content: hex256 + "  hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "binary star", content: hex256 + " *hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "bare digest", content: hex256 + "\n", algo: SHA256, file: "anything.txt", want: hex256},
		{name: "bare digest no newline, trailing space", content: hex256 + " ", algo: SHA256, file: "a", want: hex256},
		{name: "BSD", content: "SHA256 (hh.txt) = " + hex256 + "\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "OpenSSL 3", content: "SHA2-256(hh.txt)= " + hex256 + "\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "BSD sha512", content: "SHA512 (hh.txt) = " + hex512, algo: SHA512, file: "hh.txt", want: hex512},
		{name: "BSD md5", content: "MD5 (hh.txt) = " + hexMD5, algo: MD5, file: "hh.txt", want: hexMD5},
		{name: "BSD name with parentheses", content: "SHA256 (a (1).txt) = " + hex256, algo: SHA256, file: "a (1).txt", want: hex256},
		{name: "CRLF sidecar", content: other + "  a.txt\r\n" + hex256 + "  hh.txt\r\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "BOM and blank lines", content: "\xef\xbb\xbf\n  \n" + hex256 + "  hh.txt\n\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "uppercase hex", content: strings.ToUpper(hex256) + "  hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "match on base name", content: hex256 + "  ./out/2024/hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "windows path", content: hex256 + " *C:\\out\\hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "escaped name line", content: "\\" + hex256 + "  dir\\\\hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "same digest twice", content: hex256 + "  a/hh.txt\n" + hex256 + "  b/hh.txt\n", algo: SHA256, file: "hh.txt", want: hex256},
		{name: "name with spaces", content: hex256 + "  my file.txt\n", algo: SHA256, file: "my file.txt", want: hex256},
		{name: "UTF-8 name", content: hex256 + "  戶籍.txt\n", algo: SHA256, file: "戶籍.txt", want: hex256},

		{name: "wrong name", content: hex256 + "  other.txt\n", algo: SHA256, file: "hh.txt", err: ErrNoEntry, errText: `1 entries, none for "hh.txt"`},
		{name: "empty", content: "\n\n", algo: SHA256, file: "hh.txt", err: ErrNoEntry, errText: "no entries"},
		{name: "wrong length", content: hexMD5 + "  hh.txt\n", algo: SHA256, file: "hh.txt", err: ErrDigestLength, errText: "line 1: 32 hex digits, want 64 for sha256"},
		{name: "wrong length other line", content: hex256 + "  hh.txt\n" + hex512 + "  b.txt\n", algo: SHA256, file: "hh.txt", err: ErrDigestLength, errText: "line 2: 128 hex digits, want 64"},
		{name: "wrong length BSD", content: "SHA256 (hh.txt) = " + hexMD5, algo: SHA256, file: "hh.txt", err: ErrDigestLength, errText: "line 1"},
		{name: "garbage", content: "hello world\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: `line 1: no hex digest or BSD tag at the start, want "HEX  NAME"`},
		{name: "garbage line 3", content: hex256 + "  hh.txt\n\n<html>\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "line 3:"},
		{name: "single space", content: hex256 + " hh.txt\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "two spaces"},
		{name: "missing name", content: hex256 + " *\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "missing file name"},
		{name: "leading space", content: " " + hex256 + "  hh.txt\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "starts with a space"},
		{name: "BSD wrong tag", content: "MD5 (hh.txt) = " + hex256, algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "want SHA256 or SHA2-256"},
		{name: "BSD no tag", content: "(hh.txt) = " + hex256, algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "line 1"},
		{name: "BSD empty name", content: "SHA256 () = " + hex256, algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "empty name"},
		{name: "BSD non-hex", content: "SHA256 (hh.txt) = xyz", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: `no hex digest after "="`},
		{name: "BSD no closing paren", content: "SHA256 (hh.txt = " + hex256, algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "TAG (NAME) = HEX"},
		{name: "two bare digests", content: hex256 + "\n" + other + "\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "line 1: a lone digest must be the only entry, but line 2"},
		{name: "bare plus named", content: hex256 + "  a.txt\n\n" + other + "\n", algo: SHA256, file: "a.txt", err: ErrMalformed, errText: "line 3: a lone digest must be the only entry, but line 1"},
		{name: "conflicting digests", content: hex256 + "  a/hh.txt\n" + other + "  b/hh.txt\n", algo: SHA256, file: "hh.txt", err: ErrDuplicate, errText: "lines 1 and 2"},
		{name: "bad escape", content: "\\" + hex256 + "  a\\x\n", algo: SHA256, file: "hh.txt", err: ErrMalformed, errText: "bad escape"},
		{name: "unknown algo", content: hex256, algo: "sha1", file: "hh.txt", err: ErrUnknownAlgo},
		{name: "bad file name", content: hex256, algo: SHA256, file: "../hh.txt", err: ErrBadName},
		{name: "too large", content: strings.Repeat("\n", MaxSidecarSize+1), algo: SHA256, file: "hh.txt", err: ErrTooLarge, errText: "want at most 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSidecar([]byte(tt.content), tt.algo, tt.file)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error = %q, want it to contain %q", err, tt.errText)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSidecar = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name    string
		content string
		algo    Algo
		want    []ManifestEntry
		err     error
		errText string
	}{
		{
			name:    "sha256sum lines",
			content: hex256 + "  a.txt\n" + strings.ToUpper(other) + " *b.txt\n\nSHA256 (c.txt) = " + hex256 + "\n",
			algo:    SHA256,
			want: []ManifestEntry{
				{Name: "a.txt", Size: -1, Digest: hex256, Algo: SHA256, Records: -1},
				{Name: "b.txt", Size: -1, Digest: other, Algo: SHA256, Records: -1},
				{Name: "c.txt", Size: -1, Digest: hex256, Algo: SHA256, Records: -1},
			},
		},
		{
			name:    "md5 lines",
			content: hexMD5 + "  a.txt\n",
			algo:    MD5,
			want:    []ManifestEntry{{Name: "a.txt", Size: -1, Digest: hexMD5, Algo: MD5, Records: -1}},
		},
		{
			name:    "CSV sha256",
			content: "name,size,sha256,records\r\na.txt,1200,\"" + hex256 + "\",10\r\n\"b, c.txt\",0," + strings.ToUpper(other) + ",0\r\nd.txt,,\"" + hex256 + "\",\r\n",
			algo:    SHA512, // the header decides
			want: []ManifestEntry{
				{Name: "a.txt", Size: 1200, Digest: hex256, Algo: SHA256, Records: 10},
				{Name: "b, c.txt", Size: 0, Digest: other, Algo: SHA256, Records: 0},
				{Name: "d.txt", Size: -1, Digest: hex256, Algo: SHA256, Records: -1},
			},
		},
		{
			name:    "CSV sha512 with BOM",
			content: "\xef\xbb\xbfname,size,sha512,records\n戶籍_0001.txt,5," + hex512 + ",1",
			algo:    SHA256,
			want:    []ManifestEntry{{Name: "戶籍_0001.txt", Size: 5, Digest: hex512, Algo: SHA512, Records: 1}},
		},
		{name: "CSV header only", content: "name,size,sha256,records\n", algo: SHA256, want: []ManifestEntry{}},

		{name: "empty", content: "", algo: SHA256, err: ErrNoEntry},
		{name: "blank", content: "\r\n\n", algo: SHA256, err: ErrNoEntry},
		{name: "duplicate lines", content: hex256 + "  a.txt\n" + hex256 + "  b.txt\n" + other + "  a.txt\n", algo: SHA256, err: ErrDuplicate, errText: `line 3: "a.txt" already listed at line 1`},
		{name: "duplicate CSV", content: "name,size,sha256,records\na.txt,1," + hex256 + ",1\na.txt,1," + hex256 + ",1\n", algo: SHA256, err: ErrDuplicate, errText: "line 3"},
		{name: "bad name path", content: hex256 + "  dir/a.txt\n", algo: SHA256, err: ErrBadName, errText: `line 1: "dir/a.txt": path separator '/' at byte 3`},
		{name: "bad name CSV", content: "name,size,sha256,records\n..,1," + hex256 + ",1\n", algo: SHA256, err: ErrBadName, errText: "line 2"},
		{name: "bad name control", content: hex256 + "  a\x1bb.txt\n", algo: SHA256, err: ErrBadName, errText: `"a\x1bb.txt"`},
		{name: "bare digest", content: hex256 + "\n", algo: SHA256, err: ErrMalformed, errText: "line 1: lone digest without a file name"},
		{name: "missing field", content: "name,size,sha256,records\na.txt,1," + hex256 + "\n", algo: SHA256, err: ErrMalformed, errText: "line 2: 3 fields, want 4 (name,size,sha256,records)"},
		{name: "extra field", content: "name,size,sha256,records\na.txt,1," + hex256 + ",1,x\n", algo: SHA256, err: ErrMalformed, errText: "line 2: 5 fields"},
		{name: "empty digest", content: "name,size,sha256,records\na.txt,1,,1\n", algo: SHA256, err: ErrMalformed, errText: "line 2: field sha256 is empty, want 64 hex digits"},
		{name: "short digest CSV", content: "name,size,sha512,records\na.txt,1," + hex256 + ",1\n", algo: SHA256, err: ErrDigestLength, errText: "line 2: 64 hex digits, want 128 for sha512"},
		{name: "bad size", content: "name,size,sha256,records\na.txt,-1," + hex256 + ",1\n", algo: SHA256, err: ErrMalformed, errText: "line 2: field size: not a decimal number"},
		{name: "records overflow", content: "name,size,sha256,records\na.txt,1," + hex256 + ",99999999999999999999\n", algo: SHA256, err: ErrMalformed, errText: "field records: overflows int64"},
		{name: "bad quote", content: "name,size,sha256,records\n\"a.txt,1," + hex256 + ",1\n", algo: SHA256, err: ErrMalformed, errText: "line 2, column"},
		{name: "unknown CSV header", content: "name,size,md5,records\na.txt,1," + hexMD5 + ",1\n", algo: MD5, err: ErrMalformed, errText: "unknown CSV header"},
		{name: "garbage", content: hex256 + "  a.txt\n%%%\n", algo: SHA256, err: ErrMalformed, errText: "line 2:"},
		{name: "unknown algo", content: hex256 + "  a.txt\n", algo: "crc", err: ErrUnknownAlgo},
		{name: "too large", content: strings.Repeat("\n", MaxManifestSize+1), algo: SHA256, err: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseManifest([]byte(tt.content), tt.algo)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error = %q, want it to contain %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestErrorsDoNotQuoteContent checks that a malformed line's text never
// appears in the error.
func TestErrorsDoNotQuoteContent(t *testing.T) {
	secret := "A123456789 王小明 1980-01-01"
	for _, content := range []string{
		secret + "\n",
		hex256 + "  a.txt\n" + secret,
		"name,size,sha256,records\na.txt,1," + hex256 + "," + secret + "\n",
		"name,size,sha256,records\n" + secret + "\n",
		"SHA256 (" + secret + ") = zz",
	} {
		_, err1 := ParseManifest([]byte(content), SHA256)
		_, err2 := ParseSidecar([]byte(content), SHA256, "a.txt")
		for _, err := range []error{err1, err2} {
			if err == nil || strings.Contains(err.Error(), "王") || strings.Contains(err.Error(), "A123") {
				t.Errorf("content %q: error %v quotes content or is nil", content, err)
			}
		}
	}
}

// checkErrorText fails if an error message could carry raw bytes.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if !utf8.ValidString(msg) {
		t.Fatalf("error message is not valid UTF-8: %q", msg)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			t.Fatalf("error message has control character %U: %q", r, msg)
		}
	}
}

var fuzzAlgos = []Algo{SHA256, SHA512, MD5, "bogus"}

func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte(hex256+"  hh.txt\n"), "hh.txt", uint8(0))
	f.Add([]byte(hex256+" *hh.txt\r\n"), "hh.txt", uint8(0))
	f.Add([]byte(hex512), "x", uint8(1))
	f.Add([]byte("MD5 (hh.txt) = "+hexMD5), "hh.txt", uint8(2))
	f.Add([]byte("SHA2-256(a (b).txt)= "+hex256), "a (b).txt", uint8(0))
	f.Add([]byte("\\"+hex256+"  a\\\\b\n"), "b", uint8(0))
	f.Add([]byte("\xef\xbb\xbf"+hex256+"\n\n"+other+"\n"), "a", uint8(0))
	f.Add([]byte("(=)"), "a", uint8(0))
	f.Fuzz(func(t *testing.T, content []byte, name string, ai uint8) {
		algo := fuzzAlgos[int(ai)%len(fuzzAlgos)]
		digest, err := ParseSidecar(content, algo, name)
		if err != nil {
			checkErrorText(t, err)
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(digest) != algo.hexLen() || !isHex(digest) || strings.ToLower(digest) != digest {
			t.Fatalf("digest %q is not %d lowercase hex digits", digest, algo.hexLen())
		}
		if ValidRemoteName(name) != nil {
			t.Fatalf("accepted invalid name %q", name)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(hex256+"  a.txt\n"+other+" *b.txt\n"), uint8(0))
	f.Add([]byte("name,size,sha256,records\r\na.txt,1,"+hex256+",2\r\n"), uint8(0))
	f.Add([]byte("name,size,sha512,records\n\"a,b\",,"+hex512+",\n"), uint8(1))
	f.Add([]byte("name,size,sha256,records\n\"a\nb\",1,"+hex256+",1\n"), uint8(0))
	f.Add([]byte("MD5 (a) = "+hexMD5+"\nMD5 (a) = "+hexMD5), uint8(2))
	f.Add([]byte("name,"), uint8(0))
	f.Fuzz(func(t *testing.T, content []byte, ai uint8) {
		algo := fuzzAlgos[int(ai)%len(fuzzAlgos)]
		entries, err := ParseManifest(content, algo)
		if err != nil {
			checkErrorText(t, err)
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		seen := make(map[string]bool)
		var again bytes.Buffer
		for _, e := range entries {
			if err := ValidRemoteName(e.Name); err != nil {
				t.Fatalf("accepted entry: %v", err)
			}
			if seen[e.Name] {
				t.Fatalf("duplicate %q accepted", e.Name)
			}
			seen[e.Name] = true
			if len(e.Digest) != e.Algo.hexLen() || strings.ToLower(e.Digest) != e.Digest || !isHex(e.Digest) {
				t.Fatalf("bad digest %q for %s", e.Digest, e.Algo)
			}
			if e.Size < -1 || e.Records < -1 {
				t.Fatalf("negative size or records in %+v", e)
			}
			fmt.Fprintf(&again, "%s  %s\n", e.Digest, e.Name)
		}
		if len(entries) == 0 {
			return
		}
		// What was accepted must survive a round trip through sha256sum form.
		round, err := ParseManifest(again.Bytes(), entries[0].Algo)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		for i := range round {
			if round[i].Name != entries[i].Name || round[i].Digest != entries[i].Digest {
				t.Fatalf("round trip entry %d: %+v, want %+v", i, round[i], entries[i])
			}
		}
	})
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrTooLarge, ErrUnknownAlgo, ErrMalformed, ErrDigestLength, ErrNoEntry, ErrDuplicate, ErrBadName} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
