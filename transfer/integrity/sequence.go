package integrity

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
)

// Sequence verdicts, in SeqVerdict.Status.
const (
	SeqNext       = "next"       // the next expected change file: take it
	SeqGap        = "gap"        // a file is missing before it: hold it
	SeqRepeat     = "repeat"     // already accepted, or a duplicate: skip it
	SeqUnparsable = "unparsable" // no sequence number in the name
)

// SeqVerdict is CheckSequence's verdict on one candidate file.
type SeqVerdict struct {
	Name   string
	Seq    int64  // -1 if Status is SeqUnparsable
	Status string // SeqNext, SeqGap, SeqRepeat or SeqUnparsable
	Reason string // why, for SeqGap, SeqRepeat and SeqUnparsable
}

// ParseSequence extracts the sequence number from a file name. The first
// capture group of re must match ASCII digits, e.g. `_(\d{4})\.txt$`.
// Errors wrap ErrNoSequence.
func ParseSequence(re *regexp.Regexp, name string) (int64, error) {
	if re == nil {
		return 0, fmt.Errorf("%w: no sequence pattern configured", ErrNoSequence)
	}
	if re.NumSubexp() < 1 {
		return 0, fmt.Errorf("%w: pattern `%s` has no capture group, want one group of digits", ErrNoSequence, re)
	}
	m := re.FindStringSubmatchIndex(name)
	if m == nil {
		return 0, fmt.Errorf("%w: name %s does not match `%s`", ErrNoSequence, quoteName(name), re)
	}
	if m[2] < 0 {
		return 0, fmt.Errorf("%w: name %s: group 1 of `%s` took no part in the match, want digits", ErrNoSequence, quoteName(name), re)
	}
	seq, err := parseDecimal(name[m[2]:m[3]])
	if err != nil {
		return 0, fmt.Errorf("%w: name %s: group 1 of `%s` %v", ErrNoSequence, quoteName(name), re, err)
	}
	return seq, nil
}

// CheckSequence decides which change files may be taken now. last is the
// last sequence number accepted (-1 if none). Verdicts come ordered by
// sequence number (ties in input order), unparsable names last in input
// order. Walking that order, a file numbered last+1 is SeqNext and advances
// last; one numbered last or below, or repeating an earlier candidate's
// number, is SeqRepeat (a last below -1 counts as -1); the first file beyond last+1 and every later one is
// SeqGap, held until the missing files arrive. Names that fail
// ValidRemoteName or ParseSequence are SeqUnparsable.
func CheckSequence(re *regexp.Regexp, last int64, names []string) []SeqVerdict {
	out := make([]SeqVerdict, 0, len(names))
	var bad []SeqVerdict
	for _, name := range names {
		v := SeqVerdict{Name: name, Seq: -1}
		if err := ValidRemoteName(name); err != nil {
			v.Status, v.Reason = SeqUnparsable, err.Error()
			bad = append(bad, v)
			continue
		}
		seq, err := ParseSequence(re, name)
		if err != nil {
			v.Status, v.Reason = SeqUnparsable, err.Error()
			bad = append(bad, v)
			continue
		}
		v.Seq = seq
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b SeqVerdict) int { return cmp.Compare(a.Seq, b.Seq) })

	if last < -1 {
		last = -1
	}
	held := false
	first := 0 // index of the first candidate with out[i].Seq
	for i := range out {
		v := &out[i]
		if v.Seq != out[first].Seq {
			first = i
		}
		switch {
		case first < i:
			v.Status, v.Reason = SeqRepeat, fmt.Sprintf("duplicate of sequence %d in %s", v.Seq, quoteName(out[first].Name))
		case v.Seq <= last:
			v.Status, v.Reason = SeqRepeat, fmt.Sprintf("sequence %d already accepted (last accepted %d)", v.Seq, last)
		case held:
			v.Status, v.Reason = SeqGap, fmt.Sprintf("held behind missing sequence %d", last+1)
		case v.Seq == last+1:
			v.Status = SeqNext
			last = v.Seq
		default:
			held = true
			v.Status = SeqGap
			if v.Seq == last+2 {
				v.Reason = fmt.Sprintf("sequence %d is missing", last+1)
			} else {
				v.Reason = fmt.Sprintf("sequences %d to %d are missing", last+1, v.Seq-1)
			}
		}
	}
	return append(out, bad...)
}
