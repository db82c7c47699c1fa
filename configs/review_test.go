package configs

import (
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int{"1%": 100, "0.5%": 50, "0.25%": 25, "100%": 10000, ".5%": 50, "12.3%": 1230} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, _ := ParseRate(FormatRate(got)); back != got {
			t.Errorf("FormatRate(%d) = %q does not read back", got, FormatRate(got))
		}
	}
	for _, in := range []string{"", "1", "0%", "101%", "0.001%", "-1%", "a%", "1.2.3%", "+1%"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	if FormatRate(100) != "1%" || FormatRate(50) != "0.5%" || FormatRate(1) != "0.01%" {
		t.Errorf("FormatRate: %s %s %s", FormatRate(100), FormatRate(50), FormatRate(1))
	}
}

func TestReviewConfig(t *testing.T) {
	c := &Config{}
	c.applyReviewDefaults()
	if c.Review.Rate != "1%" || c.Review.MinPerPerson != 1 || c.Review.Period != "yearly" {
		t.Fatalf("defaults: %+v", c.Review)
	}
	c.Review = Review{Rate: "2", MinPerPerson: 0, Period: "weekly"}
	var p problems
	c.validateReview(&p)
	all := strings.Join(p, "\n")
	for _, key := range []string{"review.rate", "review.min_per_person", "review.period"} {
		if !strings.Contains(all, key) {
			t.Errorf("no problem for %s in %s", key, all)
		}
	}
}
