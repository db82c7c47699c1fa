package configs

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]Retention{"2y": {2, 0}, "180d": {0, 180}, "1y180d": {1, 180}} {
		got, err := ParseRetention(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("%q: %+v %v (%s)", in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", "2", "2w", "y", "1d2y", "-1y", "2 y", "1.5y"} {
		if _, err := ParseRetention(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Calendar years: a leap day is kept until 1 March.
	leap := time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)
	if got := (Retention{Years: 1}).Due(leap); !got.Equal(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("due %v", got)
	}
}

// TestRetentionConfig: retention is optional, parsed per job, and a bad
// or out-of-range value is reported at its path.
func TestRetentionConfig(t *testing.T) {
	base, err := Parse([]byte(minimal), "/etc/custodian")
	if err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	if base.Jobs[0].Retention.Set() {
		t.Error("retention set by default")
	}
	c, err := Parse([]byte(minimal+"    retention: 2y\n"), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	if c.Jobs[0].Retention != (Retention{Years: 2}) {
		t.Errorf("retention %+v", c.Jobs[0].Retention)
	}
	for val, want := range map[string]string{"2w": "not a retention", "0d": "out of range", "101y": "out of range"} {
		_, err := Parse([]byte(minimal+"    retention: "+val+"\n"), "/etc/custodian")
		if err == nil || !strings.Contains(err.Error(), "jobs[0].retention") || !strings.Contains(err.Error(), want) {
			t.Errorf("retention %s: %v", val, err)
		}
	}
}
