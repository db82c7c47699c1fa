package transfer

import (
	"fmt"
	"strconv"

	"custodian/audit"
	"custodian/transfer/integrity"
)

// sequence orders change files and marks gaps, repeats and out-of-order files
// to be held.
func (j *jobRun) sequence(cands []*candidate) ([]*candidate, error) {
	re := j.seqRE
	last, err := j.lastSequence()
	if err != nil {
		return nil, err
	}
	byName := map[string]*candidate{}
	var names []string
	baseline := int64(-1)
	for _, c := range cands {
		byName[c.name] = c
		names = append(names, c.name)
		if s, err := integrity.ParseSequence(re, c.name); err == nil && (baseline < 0 || s < baseline) {
			baseline = s
		}
	}
	if last < 0 && baseline >= 0 {
		// The job's first change files: the lowest sequence starts the chain.
		last = baseline - 1
		j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvSequenceBaseline, Job: j.job.Name,
			Details: map[string]string{"first_sequence": strconv.FormatInt(baseline, 10)}})
	}
	var out []*candidate
	for _, v := range integrity.CheckSequence(re, last, names) {
		c := byName[v.Name]
		c.seq = v.Seq
		switch v.Status {
		case "next":
		case "unparsable":
			j.refuse(c.name, "no sequence number: "+v.Reason, j.names[c.name])
			continue
		default:
			c.exp.Held = fmt.Sprintf("sequence %s: %s", v.Status, v.Reason)
		}
		out = append(out, c)
	}
	return out, nil
}

// lastSequence is the highest sequence number accepted on this job so far.
func (j *jobRun) lastSequence() (int64, error) {
	last, ok, err := j.r.Ledger.LastSequence(j.job.Name)
	if err != nil || !ok {
		return -1, err
	}
	return last, nil
}
