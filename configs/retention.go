package configs

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Retention is how long a job's datasets are kept: whole calendar years
// and days, written "2y", "180d" or "1y180d". A year is a calendar year
// (received on 29 February, kept two years: until 1 March two years on).
type Retention struct {
	Years, Days int
}

var retentionSyntax = regexp.MustCompile(`^(?:(\d{1,3})y)?(?:(\d{1,5})d)?$`)

// ParseRetention parses "2y", "180d" or "1y180d".
func ParseRetention(s string) (Retention, error) {
	m := retentionSyntax.FindStringSubmatch(s)
	if m == nil || s == "" {
		return Retention{}, fmt.Errorf("%q is not a retention; use whole years and days, e.g. 2y, 180d or 1y180d", s)
	}
	var r Retention
	if m[1] != "" {
		r.Years, _ = strconv.Atoi(m[1])
	}
	if m[2] != "" {
		r.Days, _ = strconv.Atoi(m[2])
	}
	if !r.Set() {
		return r, fmt.Errorf("%q is out of range; use 1d to 100y, e.g. 2y", s)
	}
	return r, nil
}

// Set reports whether a retention was configured.
func (r Retention) Set() bool { return r != Retention{} }

// Due returns when a dataset received at t is due for destruction.
func (r Retention) Due(t time.Time) time.Time { return t.AddDate(r.Years, 0, r.Days) }

func (r Retention) String() string {
	switch {
	case !r.Set():
		return ""
	case r.Days == 0:
		return strconv.Itoa(r.Years) + "y"
	case r.Years == 0:
		return strconv.Itoa(r.Days) + "d"
	}
	return strconv.Itoa(r.Years) + "y" + strconv.Itoa(r.Days) + "d"
}

// UnmarshalYAML implements yaml.Unmarshaler. A value that is not a
// retention is a *yaml.TypeError, so decoding goes on and Parse reports
// every problem.
func (r *Retention) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRetention(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*r = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Retention) MarshalYAML() (any, error) { return r.String(), nil }
