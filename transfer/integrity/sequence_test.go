package integrity

import (
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var seqRE = regexp.MustCompile(`_(\d{4})\.txt$`)

func TestParseSequence(t *testing.T) {
	tests := []struct {
		name    string
		re      *regexp.Regexp
		in      string
		want    int64
		errText string
	}{
		{name: "plain", re: seqRE, in: "HH_CHG_0042.txt", want: 42},
		{name: "zero", re: seqRE, in: "HH_CHG_0000.txt", want: 0},
		{name: "no match", re: seqRE, in: "HH_CHG_42.txt", errText: `name "HH_CHG_42.txt" does not match`},
		{name: "no group", re: regexp.MustCompile(`\d+`), in: "a_1", errText: "has no capture group"},
		{name: "nil pattern", in: "a_0001.txt", errText: "no sequence pattern"},
		{name: "group not digits", re: regexp.MustCompile(`_(\w+)\.txt$`), in: "a_x1.txt", errText: "not a decimal number"},
		{name: "group absent", re: regexp.MustCompile(`^(?:a_(\d+)|b)\.txt$`), in: "b.txt", errText: "took no part"},
		{name: "overflow", re: regexp.MustCompile(`_(\d+)$`), in: "a_99999999999999999999", errText: "overflows int64"},
		{name: "name escaped", re: seqRE, in: "a\x00b", errText: `"a\x00b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSequence(tt.re, tt.in)
			if tt.errText != "" {
				if !errors.Is(err, ErrNoSequence) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error = %v, want ErrNoSequence containing %q", err, tt.errText)
				}
				checkErrorText(t, err)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSequence = %d, %v, want %d", got, err, tt.want)
			}
		})
	}
}

func TestCheckSequence(t *testing.T) {
	type v = SeqVerdict
	tests := []struct {
		name  string
		last  int64
		names []string
		want  []SeqVerdict
	}{
		{
			name: "next", last: 4, names: []string{"c_0005.txt"},
			want: []v{{Name: "c_0005.txt", Seq: 5, Status: SeqNext}},
		},
		{
			name: "first ever", last: -1, names: []string{"c_0001.txt", "c_0000.txt"},
			want: []v{{Name: "c_0000.txt", Seq: 0, Status: SeqNext}, {Name: "c_0001.txt", Seq: 1, Status: SeqNext}},
		},
		{
			name: "out of order arrival", last: 4, names: []string{"c_0007.txt", "c_0005.txt", "c_0006.txt"},
			want: []v{
				{Name: "c_0005.txt", Seq: 5, Status: SeqNext},
				{Name: "c_0006.txt", Seq: 6, Status: SeqNext},
				{Name: "c_0007.txt", Seq: 7, Status: SeqNext},
			},
		},
		{
			name: "gap holds the rest", last: 4, names: []string{"c_0009.txt", "c_0005.txt", "c_0007.txt", "c_0008.txt"},
			want: []v{
				{Name: "c_0005.txt", Seq: 5, Status: SeqNext},
				{Name: "c_0007.txt", Seq: 7, Status: SeqGap, Reason: "sequence 6 is missing"},
				{Name: "c_0008.txt", Seq: 8, Status: SeqGap, Reason: "held behind missing sequence 6"},
				{Name: "c_0009.txt", Seq: 9, Status: SeqGap, Reason: "held behind missing sequence 6"},
			},
		},
		{
			name: "wide gap", last: 4, names: []string{"c_0010.txt"},
			want: []v{{Name: "c_0010.txt", Seq: 10, Status: SeqGap, Reason: "sequences 5 to 9 are missing"}},
		},
		{
			name: "repeat", last: 4, names: []string{"c_0004.txt", "c_0002.txt", "c_0005.txt"},
			want: []v{
				{Name: "c_0002.txt", Seq: 2, Status: SeqRepeat, Reason: "sequence 2 already accepted (last accepted 4)"},
				{Name: "c_0004.txt", Seq: 4, Status: SeqRepeat, Reason: "sequence 4 already accepted (last accepted 4)"},
				{Name: "c_0005.txt", Seq: 5, Status: SeqNext},
			},
		},
		{
			name: "duplicate among candidates", last: 4, names: []string{"b_0005.txt", "a_0005.txt", "a_0007.txt", "b_0007.txt"},
			want: []v{
				{Name: "b_0005.txt", Seq: 5, Status: SeqNext},
				{Name: "a_0005.txt", Seq: 5, Status: SeqRepeat, Reason: `duplicate of sequence 5 in "b_0005.txt"`},
				{Name: "a_0007.txt", Seq: 7, Status: SeqGap, Reason: "sequence 6 is missing"},
				{Name: "b_0007.txt", Seq: 7, Status: SeqRepeat, Reason: `duplicate of sequence 7 in "a_0007.txt"`},
			},
		},
		{
			name: "unparsable last in input order", last: 4, names: []string{"readme.txt", "c_0005.txt", "c/_0006.txt", "c_0006.txt"},
			want: []v{
				{Name: "c_0005.txt", Seq: 5, Status: SeqNext},
				{Name: "c_0006.txt", Seq: 6, Status: SeqNext},
				{Name: "readme.txt", Seq: -1, Status: SeqUnparsable, Reason: "no sequence number: name \"readme.txt\" does not match `_(\\d{4})\\.txt$`"},
				{Name: "c/_0006.txt", Seq: -1, Status: SeqUnparsable, Reason: "invalid remote file name \"c/_0006.txt\": path separator '/' at byte 1, want a plain file name"},
			},
		},
		{name: "none", last: 4, names: nil, want: []v{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSequence(seqRE, tt.last, tt.names)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CheckSequence:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCheckSequenceNilPattern(t *testing.T) {
	got := CheckSequence(nil, 0, []string{"a_0001.txt"})
	if len(got) != 1 || got[0].Status != SeqUnparsable {
		t.Errorf("CheckSequence(nil) = %+v, want one unparsable", got)
	}
}

func FuzzSequence(f *testing.F) {
	f.Add("c_0005.txt\nc_0007.txt\nc_0006.txt", int64(4))
	f.Add("c_0005.txt\nc_0005.txt\nx", int64(-1))
	f.Add("c_9999.txt\nc_0000.txt", int64(9223372036854775807))
	f.Add("c_0001.txt\n\nc_0002.txt\xff", int64(-7))
	f.Fuzz(func(t *testing.T, list string, last int64) {
		names := strings.Split(list, "\n")
		got := CheckSequence(seqRE, last, names)
		if len(got) != len(names) {
			t.Fatalf("%d verdicts for %d names", len(got), len(names))
		}
		gotNames := make([]string, len(got))
		for i, v := range got {
			gotNames[i] = v.Name
		}
		slices.Sort(gotNames)
		slices.Sort(names)
		if !slices.Equal(gotNames, names) {
			t.Fatalf("verdict names %q, want %q", gotNames, names)
		}
		accepted := max(last, -1) // advances with each next verdict
		held, unparsable := false, false
		for i, v := range got {
			switch v.Status {
			case SeqUnparsable:
				unparsable = true
				if v.Seq != -1 {
					t.Fatalf("unparsable %+v has a sequence", v)
				}
				continue
			case SeqNext:
				if held || accepted == 1<<63-1 || v.Seq != accepted+1 {
					t.Fatalf("verdict %d %+v: next, but last accepted %d (held %v)", i, v, accepted, held)
				}
				accepted = v.Seq
			case SeqGap:
				if !held && v.Seq <= accepted+1 {
					t.Fatalf("verdict %d %+v: gap, but last accepted %d", i, v, accepted)
				}
				held = true
			case SeqRepeat:
				if v.Seq > accepted && (i == 0 || got[i-1].Seq != v.Seq) {
					t.Fatalf("verdict %d %+v: repeat of nothing", i, v)
				}
			default:
				t.Fatalf("unknown status %q", v.Status)
			}
			if unparsable {
				t.Fatalf("verdict %d %+v after an unparsable one", i, v)
			}
			if i > 0 && got[i-1].Status != SeqUnparsable && got[i-1].Seq > v.Seq {
				t.Fatalf("verdicts not ordered at %d", i)
			}
			if seq, err := ParseSequence(seqRE, v.Name); err != nil || seq != v.Seq {
				t.Fatalf("verdict %+v: ParseSequence = %d, %v", v, seq, err)
			}
		}
	})
}
