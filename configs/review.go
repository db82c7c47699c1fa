package configs

import (
	"fmt"
	"strconv"
	"strings"
)

// Review is the optional review: block: the defaults of the sampling
// review of access records (clause 六). The clause asks for a yearly
// review; other agencies sample 1% of records, at least one per person.
type Review struct {
	// Rate is the share of each person's access records drawn, as a
	// percentage with up to two decimals ("1%", "0.5%", "100%").
	Rate string `yaml:"rate"`
	// MinPerPerson is the least number of records drawn per person (all
	// of them when the person has fewer).
	MinPerPerson int `yaml:"min_per_person" accept:"a whole number from 1 to 1000"`
	// Period is the length of a review: yearly, semiannual or monthly. A
	// review started without --period covers the last complete one.
	Period string `yaml:"period"`
}

// Training is the optional training: block (clause 四(四)).
type Training struct {
	// Enforce refuses data reads by designated staff with less than
	// MinTrainingHours of training in the last twelve months.
	Enforce bool `yaml:"enforce"`
}

// Defaults of the review: block.
const (
	DefaultReviewRate         = "1%"
	DefaultReviewMinPerPerson = 1
	DefaultReviewPeriod       = "yearly"
)

// ReviewPeriods are the accepted values of review.period.
var ReviewPeriods = []string{"yearly", "semiannual", "monthly"}

func (c *Config) applyReviewDefaults() {
	if c.Review.Rate == "" {
		c.Review.Rate = DefaultReviewRate
	}
	if c.Review.MinPerPerson == 0 {
		c.Review.MinPerPerson = DefaultReviewMinPerPerson
	}
	if c.Review.Period == "" {
		c.Review.Period = DefaultReviewPeriod
	}
}

func (c *Config) validateReview(p *problems) {
	if _, err := ParseRate(c.Review.Rate); err != nil {
		p.add("review.rate", "%v", err)
	}
	if n := c.Review.MinPerPerson; n < 1 || n > 1000 {
		p.add("review.min_per_person", "%d is out of range; use 1 to 1000", n)
	}
	ok := false
	for _, v := range ReviewPeriods {
		ok = ok || v == c.Review.Period
	}
	if !ok {
		p.add("review.period", "%q is not a period; use %s", c.Review.Period, strings.Join(ReviewPeriods, ", "))
	}
}

// ParseRate reads a sampling rate given as a percentage with up to two
// decimals ("1%", "0.25%", "100%") and returns it in basis points
// (hundredths of a percent, 1 to 10000), so that the sample size is exact
// integer arithmetic: ceil(n × bp / 10000).
func ParseRate(s string) (int, error) {
	t := strings.TrimSpace(s)
	num, ok := strings.CutSuffix(t, "%")
	if !ok || num == "" {
		return 0, fmt.Errorf("%q is not a rate; write a percentage such as 1%% or 0.5%%", s)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if len(frac) > 2 {
		return 0, fmt.Errorf("%q has more than two decimals; write e.g. 0.25%%", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	if whole == "" {
		whole = "0"
	}
	w, err1 := strconv.Atoi(whole)
	f, err2 := strconv.Atoi(frac)
	if err1 != nil || err2 != nil || w < 0 || f < 0 || strings.ContainsAny(num, "+-") {
		return 0, fmt.Errorf("%q is not a rate; write a percentage such as 1%% or 0.5%%", s)
	}
	bp := w*100 + f
	if bp < 1 || bp > 10000 {
		return 0, fmt.Errorf("%q is out of range; use 0.01%% to 100%%", s)
	}
	return bp, nil
}

// FormatRate writes basis points as a percentage ("1%", "0.5%").
func FormatRate(bp int) string {
	s := strconv.Itoa(bp/100) + "." + fmt.Sprintf("%02d", bp%100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}
