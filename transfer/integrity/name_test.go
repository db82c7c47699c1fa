package integrity

import (
	"errors"
	"strings"
	"testing"
)

func TestValidRemoteName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		errText string // "" if valid
	}{
		{"plain", "HH_2024_0001.txt", ""},
		{"UTF-8", "戶籍資料_2024.csv", ""},
		{"inner spaces and dots", "a b..c", ""},
		{"leading space", " a.txt", "leading or trailing white space"},
		{"trailing space", "a.txt ", "leading or trailing white space"},
		{"only a space", " ", "leading or trailing white space"},
		{"leading dot", ".hidden", ""},
		{"three dots", "...", ""},
		{"255 bytes", strings.Repeat("a", 255), ""},
		{"U+00A0 is not control", "a\u00a0b", ""},

		{"empty", "", `"": empty`},
		{"dot", ".", "directory reference"},
		{"dotdot", "..", `"..": a directory reference`},
		{"NUL", "a\x00b", `"a\x00b": NUL at byte 1`},
		{"slash", "a/b", `"a/b": path separator '/' at byte 1`},
		{"backslash", `a\b`, `path separator '\\' at byte 1`},
		{"invalid UTF-8", "\xff", `"\xff": invalid UTF-8 at byte 0`},
		{"invalid UTF-8 later", "ab\xc3", `invalid UTF-8 at byte 2`},
		{"Big5 bytes", "\xa4\xa4\xa4\xe5.txt", "invalid UTF-8 at byte 0"},
		{"C1 NEL", "a\u0085b", `"a\u0085b": control character U+0085 at byte 1`},
		{"C1 first", "\u0080", "control character U+0080"},
		{"C1 last", "\u009f", "control character U+009F"},
		{"tab", "a\tb", `"a\tb": control character U+0009 at byte 1`},
		{"newline", "a\nb", "control character U+000A"},
		{"DEL", "a\x7f", "control character U+007F"},
		{"escape", "\x1b[31m", "control character U+001B"},
		{"too long", strings.Repeat("a", 256), "256 bytes long, want at most 255"},
		{"too long multibyte", strings.Repeat("戶", 86), "258 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidRemoteName(tt.in)
			if tt.errText == "" {
				if err != nil {
					t.Fatalf("ValidRemoteName(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("ValidRemoteName(%q) = %v, want ErrBadName", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q, want it to contain %q", err, tt.errText)
			}
			checkErrorText(t, err)
			if len(err.Error()) > 300 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"0", 0, nil},
		{"007", 7, nil},
		{"9223372036854775807", 1<<63 - 1, nil},
		{"9223372036854775808", 0, errOverflow},
		{"99999999999999999999", 0, errOverflow},
		{"", 0, errNotDecimal},
		{"-1", 0, errNotDecimal},
		{"+1", 0, errNotDecimal},
		{"1 ", 0, errNotDecimal},
		{"١", 0, errNotDecimal},
	}
	for _, tt := range tests {
		got, err := parseDecimal(tt.in)
		if got != tt.want || err != tt.err {
			t.Errorf("parseDecimal(%q) = %d, %v, want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
