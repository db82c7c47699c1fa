package configs

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file is the strict half of Parse: before the YAML is decoded into a
// Config, checkShape walks the YAML tree beside the Config's Go types and
// reports, with its path, every key that is not an option and every value
// that cannot be decoded (text for a number, a fraction for a whole number,
// a duration out of range, a mapping for a string). yaml.v3 alone stops at
// the first such value and names only a line, or silently truncates 0.5
// into an int; here nothing stops the list, so `config check` shows every
// problem at once.

// maxShapeNodes bounds the walk, which follows aliases: a document that
// expands to more nodes than this is refused rather than walked.
const maxShapeNodes = 1 << 20

type shapeChecker struct {
	p       *problems
	budget  int
	changed bool // a duplicate key was removed from the tree
}

// checkShape reports the problems of root (a document node from
// yaml.Unmarshal) against the Config type. It removes the second
// occurrence of a duplicate key from the tree and then reports changed.
func checkShape(p *problems, root *yaml.Node) (changed bool) {
	c := &shapeChecker{p: p, budget: maxShapeNodes}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		c.walk("", root.Content[0], reflect.TypeOf(Config{}), "")
	}
	return c.changed
}

var (
	durationType  = reflect.TypeOf(Duration{})
	byteSizeType  = reflect.TypeOf(ByteSize(0))
	afterPullType = reflect.TypeOf(AfterPull{})
	retentionType = reflect.TypeOf(Retention{})
)

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func (c *shapeChecker) add(at, format string, args ...any) {
	if at == "" {
		at = "(top level)"
	}
	c.p.add(at, format, args...)
}

// walk checks n at path at against type t; accept describes the accepted
// values of a leaf (from the field's accept tag), for messages.
func (c *shapeChecker) walk(at string, n *yaml.Node, t reflect.Type, accept string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if c.budget--; c.budget < 0 {
		if c.budget == -1 {
			c.add(at, "the document expands to more than %d values through aliases; write it out without so many aliases", maxShapeNodes)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // not set: the default applies
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if c.scalar(at, n, "a duration such as 30s, 5m or a number of seconds") {
			if _, err := parseDuration(n.Value); err != nil {
				c.add(at, "%v", err)
			}
		}
	case t == byteSizeType:
		if c.scalar(at, n, "a size such as 64GiB") {
			if _, err := parseByteSize(n.Value); err != nil {
				c.add(at, "%v", err)
			}
		}
	case t == retentionType:
		if c.scalar(at, n, "a retention such as 2y, 180d or 1y180d") {
			if _, err := ParseRetention(n.Value); err != nil {
				c.add(at, "%v", err)
			}
		}
	case t == afterPullType:
		c.scalar(at, n, "a single value") // its forms are checked by Validate
	case t.Kind() == reflect.Struct:
		c.structure(at, n, t)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(at, "%s is not accepted; use a mapping of names to entries", describe(n))
			return
		}
		c.pairs(at, n, func(key string, k, v *yaml.Node) {
			c.walk(join(at, key), v, t.Elem(), "")
		})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(at, "%s is not accepted; use a list (lines starting with -)", describe(n))
			return
		}
		for i, e := range n.Content {
			c.walk(fmt.Sprintf("%s[%d]", at, i), e, t.Elem(), "")
		}
	case t.Kind() == reflect.String:
		c.scalar(at, n, "a single value")
	case t.Kind() == reflect.Bool:
		if c.scalar(at, n, "true or false") {
			var b bool
			if err := n.Decode(&b); err != nil {
				c.add(at, "%q is not accepted; use true or false", n.Value)
			}
		}
	case t.Kind() == reflect.Int:
		if accept == "" {
			accept = "a whole number"
		}
		if !c.scalar(at, n, accept) {
			return
		}
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err != nil {
				c.add(at, "%s is out of range; use %s", n.Value, accept)
			}
		case "!!float":
			c.add(at, "%s is not a whole number; use %s", n.Value, accept)
		default:
			c.add(at, "%q is not a whole number; use %s", n.Value, accept)
		}
	}
}

// scalar reports whether n is a single value, and a problem if it is not.
func (c *shapeChecker) scalar(at string, n *yaml.Node, accept string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	c.add(at, "%s is not accepted; use %s", describe(n), accept)
	return false
}

// structure checks a mapping against the yaml-tagged fields of struct t.
func (c *shapeChecker) structure(at string, n *yaml.Node, t reflect.Type) {
	type field struct {
		typ    reflect.Type
		accept string
	}
	fields := map[string]field{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = field{f.Type, f.Tag.Get("accept")}
		names = append(names, name)
	}
	if n.Kind != yaml.MappingNode {
		c.add(at, "%s is not accepted; use a mapping with the keys %s", describe(n), strings.Join(names, ", "))
		return
	}
	c.pairs(at, n, func(key string, k, v *yaml.Node) {
		f, ok := fields[key]
		if !ok {
			c.add(join(at, key), "unknown key; accepted keys: %s", strings.Join(names, ", "))
			return
		}
		c.walk(join(at, key), v, f.typ, f.accept)
	})
}

// pairs calls fn for each key of mapping n, then for the keys merged into
// it (<<) that it does not set itself, as YAML defines merges. A key that
// is not a single value, or appears twice, is reported; the second
// occurrence is removed from n, so that decoding (which would otherwise
// skip the whole mapping) still sees the rest of it.
func (c *shapeChecker) pairs(at string, n *yaml.Node, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	var merges []*yaml.Node
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			merges = append(merges, v)
		case k.Kind != yaml.ScalarNode:
			c.add(at, "line %d: %s as a key is not accepted; keys are names", k.Line, describe(k))
		default:
			if line, dup := seen[k.Value]; dup {
				c.add(join(at, k.Value), "defined twice (lines %d and %d); keep one", line, k.Line)
				c.changed = true
				continue
			}
			seen[k.Value] = k.Line
			fn(k.Value, k, v)
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
	var merge func(m *yaml.Node)
	merge = func(m *yaml.Node) {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		switch m.Kind {
		case yaml.SequenceNode:
			for _, e := range m.Content {
				merge(e)
			}
			return
		case yaml.MappingNode:
		default:
			c.add(at, "a merge (<<) of %s is not accepted; merge mappings only", describe(m))
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merge(v)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				continue // reported where that mapping is defined
			}
			if _, dup := seen[k.Value]; dup {
				continue // set by the mapping itself or an earlier merge
			}
			seen[k.Value] = k.Line
			fn(k.Value, k, v)
		}
	}
	for _, m := range merges {
		merge(m)
	}
}

// describe names what kind of YAML value n is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "this value"
}

// maxDurationSeconds is the longest duration time.Duration holds, in
// seconds (about 292 years).
const maxDurationSeconds = float64(math.MaxInt64) / float64(time.Second)

// durationSyntax matches what time.ParseDuration accepts, so that a value it
// refuses can be called out of range rather than not a duration.
var durationSyntax = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)

// daysSyntax is a whole number of days, e.g. 90d.
var daysSyntax = regexp.MustCompile(`^([0-9]+)d$`)

// maxDays is the most whole days a time.Duration holds.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// parseDuration parses "90s", "5m", "1h30m", whole days ("90d") or a number
// of seconds ("60", "1.5"). The error says what was found and what is
// accepted.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	const use = "use e.g. 30s, 5m, 1h30m, 90d or a number of seconds"
	if m := daysSyntax.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > maxDays {
			return 0, fmt.Errorf("%q is out of range; %s, at most 292 years", s, use)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	secs, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && !math.IsNaN(secs) && !math.IsInf(secs, 0) && math.Abs(secs) >= maxDurationSeconds:
		return 0, fmt.Errorf("%q is out of range; %s, at most 292 years", s, use)
	case err == nil && (math.IsNaN(secs) || math.IsInf(secs, 0)):
		return 0, fmt.Errorf("%q is not a duration; %s", s, use)
	case err == nil:
		return time.Duration(secs * float64(time.Second)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		if durationSyntax.MatchString(s) && strings.ContainsAny(s, "0123456789") {
			return 0, fmt.Errorf("%q is out of range; %s, at most 292 years", s, use)
		}
		return 0, fmt.Errorf("%q is not a duration; %s", s, use)
	}
	return v, nil
}

// byteUnits are the units ByteSize accepts, lower-cased.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

var sizeSyntax = regexp.MustCompile(`^([0-9]+) ?([A-Za-z]*)$`)

// parseByteSize parses "1048576", "64GiB" or "500 MB". The error says what
// was found and what is accepted.
func parseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	const use = "use a whole number of bytes, or one with a unit: KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. 64GiB"
	m := sizeSyntax.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size; %s", s, use)
	}
	unit, ok := byteUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q; %s", s, m[2], use)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is out of range; %s", s, use)
	}
	if n == 0 {
		return 0, fmt.Errorf("%q is not accepted; use a positive size, e.g. 64GiB", s)
	}
	return ByteSize(n * unit), nil
}
