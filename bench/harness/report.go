package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// findingsMarker starts the hand-written part of the report, kept on re-runs.
const findingsMarker = "<!-- findings -->"

const findingsPlaceholder = "_To be written: what the figures above show, and what to do about them._\n"

// Targets of the issue.
const (
	targetBigVsSFTP     = 1.1
	targetBigVsRclone   = 0.8
	targetSmallVsRclone = 1.0
	targetSmallVsSFTP   = 0.7
	targetRSSMiB        = 64
	targetRSSGrowth     = 0.10
	// Through the delay line (--rtt).
	targetWANBigVsRclone   = 0.5
	targetWANBigVsSFTP     = 0.35
	targetWANSmallVsRclone = 0.2
	targetPacedUtilization = 0.80
)

// utilization is the share of a paced link's capacity a run used: the time
// the link needs for the data files at its rate, divided by the run's time.
func utilization(w *workload, d time.Duration) float64 {
	if w.rate <= 0 || d <= 0 {
		return 0
	}
	return float64(w.bytes) * 8 / w.rate / d.Seconds()
}

// toolSummary is one tool's runs on one workload.
type toolSummary struct {
	tool   string
	runs   []measurement // in round order
	median time.Duration // of the successful runs
	cpu    time.Duration // median client CPU of the successful runs
	sync   time.Duration // median sync(2) after the successful runs
	ok     bool          // at least one successful run
}

type workloadSummary struct {
	w      *workload
	tools  []*toolSummary
	ratios map[string]float64 // custodian median / tool median
	rss    int64              // custodian's largest peak RSS
}

func (s *workloadSummary) tool(name string) *toolSummary {
	for _, t := range s.tools {
		if t.tool == name {
			return t
		}
	}
	return nil
}

type target struct{ what, measured, status string }

type summary struct {
	workloads []*workloadSummary
	ref       *workloadSummary // the 1 GiB memory reference, or nil
	targets   []target
	failures  []string
}

func (b *bench) summarize() *summary {
	sum := &summary{}
	for _, w := range b.workloads {
		sum.workloads = append(sum.workloads, b.summarizeWorkload(w, b.opts.Tools))
	}
	if b.ref != nil {
		sum.ref = b.summarizeWorkload(b.ref, []string{toolCustodian})
	}
	for _, m := range b.results {
		if !m.ok() {
			sum.failures = append(sum.failures, fmt.Sprintf("round %d, %s, %s: %s", m.Round, m.Workload, m.Tool, firstLine(m.Err)))
		}
	}
	sum.targets = b.targets(sum)
	return sum
}

func (b *bench) summarizeWorkload(w *workload, tools []string) *workloadSummary {
	s := &workloadSummary{w: w, ratios: map[string]float64{}}
	for _, name := range tools {
		if !b.runs(name, w) {
			continue
		}
		t := &toolSummary{tool: name}
		var walls, cpus, syncs []time.Duration
		for _, m := range b.results {
			if m.Workload != w.key || m.Tool != name {
				continue
			}
			t.runs = append(t.runs, m)
			if m.ok() {
				walls = append(walls, m.Wall)
				cpus = append(cpus, m.CPU)
				syncs = append(syncs, m.Sync)
			}
			if name == toolCustodian {
				s.rss = max(s.rss, m.PeakRSS)
			}
		}
		t.ok = len(walls) > 0
		t.median, t.cpu, t.sync = median(walls), median(cpus), median(syncs)
		s.tools = append(s.tools, t)
	}
	if c := s.tool(toolCustodian); c != nil && c.ok {
		for _, t := range s.tools {
			if t.tool != toolCustodian && t.ok && t.median > 0 {
				s.ratios[t.tool] = float64(c.median) / float64(t.median)
			}
		}
	}
	return s
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// targets evaluates the targets on this run.
func (b *bench) targets(sum *summary) []target {
	var a, bs, aw, bw, ap *workloadSummary
	for _, s := range sum.workloads {
		switch s.w.key {
		case "A":
			a = s
		case "B":
			bs = s
		case "A-wan":
			aw = s
		case "B-wan":
			bw = s
		case "A-paced":
			ap = s
		}
	}
	notApplicable := ""
	if b.opts.Quick {
		notApplicable = "not evaluated (--quick)"
	}
	bigIs1GiB := !b.opts.Quick && b.opts.BigGiB == 1
	ratio := func(s *workloadSummary, tool string, limit float64, applies bool, why string) target {
		t := target{what: fmt.Sprintf("custodian ≤ %g× %s", limit, tool)}
		r, ok := s.ratios[tool]
		switch {
		case ok:
			t.measured = fmt.Sprintf("%.2f×", r)
		default:
			t.measured = "—"
		}
		switch {
		case notApplicable != "":
			t.status = notApplicable
		case !applies:
			t.status = "not measured (" + why + ")"
		case !ok:
			t.status = "not measured (" + tool + " or custodian did not run or failed)"
		case r <= limit:
			t.status = "met"
		default:
			t.status = "**not met**"
		}
		return t
	}
	var out []target
	whyBig := fmt.Sprintf("A was %s; run without --big-gib", fmtBytes(a.w.bytes))
	t := ratio(a, toolSFTP, targetBigVsSFTP, bigIs1GiB, whyBig)
	t.what = "1 GiB: " + t.what
	out = append(out, t)
	t = ratio(a, toolRclone, targetBigVsRclone, bigIs1GiB, whyBig)
	t.what = "1 GiB: " + t.what
	out = append(out, t)
	t = ratio(bs, toolRclone, targetSmallVsRclone, true, "")
	t.what = "2,000 files: " + t.what
	out = append(out, t)
	t = ratio(bs, toolSFTP, targetSmallVsSFTP, true, "")
	t.what = "2,000 files: " + t.what
	out = append(out, t)

	rtt := b.opts.RTT.String()
	if aw != nil {
		t = ratio(aw, toolRclone, targetWANBigVsRclone, bigIs1GiB, whyBig)
		t.what = "1 GiB at " + rtt + " RTT: " + t.what
		out = append(out, t)
		t = ratio(aw, toolSFTP, targetWANBigVsSFTP, bigIs1GiB, whyBig)
		t.what = "1 GiB at " + rtt + " RTT: " + t.what
		out = append(out, t)
	}
	if bw != nil {
		t = ratio(bw, toolRclone, targetWANSmallVsRclone, true, "")
		t.what = "2,000 files at " + rtt + " RTT: " + t.what
		out = append(out, t)
	}
	if ap != nil {
		t = target{what: fmt.Sprintf("1 GiB, %s: custodian ≥ %.0f%% link utilization", b.linkDesc(ap.w.rate), targetPacedUtilization*100), measured: "—"}
		c := ap.tool(toolCustodian)
		switch {
		case notApplicable != "":
			t.status = notApplicable
		case c == nil || !c.ok:
			t.status = "not measured (custodian did not run or failed)"
		default:
			u := utilization(ap.w, c.median)
			t.measured = fmt.Sprintf("%.0f%%", u*100)
			t.status = metOrNot(u >= targetPacedUtilization)
		}
		out = append(out, t)
	}

	// Peak RSS at 1 GiB: workload A, or the reference when A is bigger.
	rss1 := int64(0)
	switch {
	case bigIs1GiB:
		rss1 = a.rss
	case sum.ref != nil:
		rss1 = sum.ref.rss
	}
	t = target{what: fmt.Sprintf("1 GiB: custodian serve peak RSS ≤ %d MiB", targetRSSMiB), measured: "—"}
	switch {
	case notApplicable != "":
		t.status = notApplicable
		if a.rss > 0 {
			t.measured = fmt.Sprintf("%.1f MiB (at %s)", mib(a.rss), fmtBytes(a.w.bytes))
		}
	case rss1 == 0:
		t.status = "not measured (custodian did not run or failed)"
	default:
		t.measured = fmt.Sprintf("%.1f MiB", mib(rss1))
		t.status = metOrNot(mib(rss1) <= targetRSSMiB)
	}
	out = append(out, t)

	t = target{what: fmt.Sprintf("4 GiB: peak RSS within %.0f%% of the 1 GiB figure", targetRSSGrowth*100), measured: "—"}
	switch {
	case notApplicable != "":
		t.status = notApplicable
	case b.opts.BigGiB < 4:
		t.status = "not measured (run `bash bench/run --big-gib 4`)"
	case rss1 == 0 || a.rss == 0:
		t.status = "not measured (custodian did not run or failed)"
	default:
		growth := float64(a.rss)/float64(rss1) - 1
		t.measured = fmt.Sprintf("%.1f MiB at %s vs %.1f MiB at 1 GiB (%+.1f%%)", mib(a.rss), fmtBytes(a.w.bytes), mib(rss1), growth*100)
		t.status = metOrNot(growth <= targetRSSGrowth)
	}
	out = append(out, t)
	return out
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

var toolLabels = map[string]string{
	toolSFTP:       "OpenSSH sftp (`get`, no check)",
	toolRclone:     "rclone copy (`--sftp-disable-hashcheck`)",
	toolCustodian:  "custodian job run (verify + encrypt + ledger)",
	toolRcloneHash: "rclone copy (hash check on)",
}

// printSummary prints the medians, ratios and peak RSS per workload.
func (b *bench) printSummary(sum *summary) {
	w := b.opts.Log
	fmt.Fprintln(w)
	for _, s := range append(slices.Clone(sum.workloads), refList(sum)...) {
		fmt.Fprintf(w, "Workload %s: %s\n", s.w.key, s.w.title)
		fmt.Fprintf(w, "  %-10s %10s %10s %11s   %s\n", "tool", "median", "client CPU", "sync after", "custodian/tool")
		for _, t := range s.tools {
			med, cpu, sync, ratio := "failed", "", "", ""
			if t.ok {
				med, cpu, sync = fmtSeconds(t.median), fmtSeconds(t.cpu), fmtSeconds(t.sync)
			}
			if r, ok := s.ratios[t.tool]; ok {
				ratio = fmt.Sprintf("%.2f", r)
			}
			fmt.Fprintf(w, "  %-10s %10s %10s %11s   %s\n", t.tool, med, cpu, sync, ratio)
		}
		if s.rss > 0 {
			fmt.Fprintf(w, "  custodian serve peak RSS: %.1f MiB\n", mib(s.rss))
		}
		if s.w.key == "B" && b.hashcheck != nil {
			fmt.Fprintf(w, "  rclone with hash check (1 run): %s\n", describeOnce(*b.hashcheck))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Targets:")
	for _, t := range sum.targets {
		fmt.Fprintf(w, "  %-52s %-28s %s\n", t.what, t.measured, strings.ReplaceAll(t.status, "**", ""))
	}
	for _, f := range sum.failures {
		fmt.Fprintln(w, "FAILED:", f)
	}
}

func refList(sum *summary) []*workloadSummary {
	if sum.ref == nil {
		return nil
	}
	return []*workloadSummary{sum.ref}
}

func describeOnce(m measurement) string {
	if m.ok() {
		return fmtSeconds(m.Wall) + ", exit 0, copy complete"
	}
	return fmt.Sprintf("failed after %s: %s", fmtSeconds(m.Wall), firstLine(m.Err))
}

// report renders the Markdown report up to the findings marker.
func (b *bench) report(sum *summary) string {
	var r strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&r, format+"\n", args...) }
	p("# Benchmarks: custodian vs OpenSSH sftp and rclone")
	p("")
	p("Issue: \"Faster than a plain OpenSSH copy\". Generated by `bench/harness` on %s; everything above \"Findings\" is rewritten by each run.", b.started.UTC().Format("2006-01-02 15:04 UTC"))
	if b.opts.Quick {
		p("")
		p("**This is a `--quick` smoke run: the sizes are tiny and the targets are not evaluated.**")
	}
	p("")
	p("## Reproduce")
	p("")
	p("```sh")
	p("%s", b.opts.Repro)
	p("```")
	p("")
	p("## Machine")
	p("")
	p("| | |")
	p("|---|---|")
	for _, kv := range b.machine() {
		p("| %s | %s |", kv[0], mdCell(kv[1]))
	}
	p("")
	p("## Method")
	p("")
	p("- Server: the real OpenSSH `sshd` (`-D -e -f` a generated config) on 127.0.0.1, public-key authentication (ed25519), `Subsystem sftp internal-sftp`. Client and server share the machine's %d cores.", runtime.NumCPU())
	p("- Data: synthetic registry files from `internal/synth` (header `HDR|…`, pipe-separated records, trailer `TRL<count>`), each with a `NAME.sha256` sidecar. The source files are in the page cache; destinations are on the same file system, fresh for every run, checked, then deleted. `sync` runs before every timed command.")
	p("- %d round(s); within a round every tool runs once per workload, and the tools' order rotates from round to round. Times are wall times of the one command below; the median is over the rounds.", b.opts.Rounds)
	if b.opts.RTT > 0 {
		p("- **Delay line** (workloads `-wan` and `-paced`): every client connects to a TCP proxy in the harness (`bench/harness/delay.go`, on 127.0.0.1) that forwards to the same sshd and holds every byte for half of %s in each direction, so each round trip takes %s more than on loopback. The `-paced` line also serializes each direction at %s (a byte leaves only after the bytes before it have left at that rate) behind a bottleneck queue of one round trip at that rate. The proxy runs on the same 2 cores. The same rounds run every tool through the same line, alternating as above.", b.opts.RTT, b.opts.RTT, fmtRateOr(b.opts.rate))
	}
	p("- **Fair comparison**: sftp and rclone copy the sidecars too, as a user checking the files by hand would have to, and their times include a `sync` right after the command (their output is durable only then); custodian fsyncs every object and ledger commit before it reports, so its time already includes that.")
	p("- **sftp**: `sftp -b BATCH -i KEY -o UserKnownHostsFile=KH -o StrictHostKeyChecking=yes -o BatchMode=yes -P PORT USER@127.0.0.1` with `get FILE LOCAL` and `get FILE.sha256 LOCAL` (extract) or `get -r DIR LOCAL` (small files and their sidecars): a plain download, no checks, default buffer and request settings.")
	p("- **rclone**: `rclone --config rclone.conf copy bench:DIR LOCAL --sftp-disable-hashcheck --transfers 4 --checkers 8` (an sftp remote with `key_file` and `known_hosts_file`, rewritten before every run and holding from the start the `shell_type`, `md5sum_command` and `sha1sum_command` that rclone saves there on first use); it copies the data files and their sidecars. On the small files it also ran once without `--sftp-disable-hashcheck`: rclone then runs `md5sum FILE` over an SSH exec channel for every file and compares.")
	p("- **custodian**: a fresh `data_dir` per run (`custodian init`), `custodian serve` in the background (ready when `custodian dataset list` answers), then the timed `custodian job run NAME --json`: pull with the README's default source settings (nothing set but address, user, key and known_hosts), verify the SHA-256 against the sidecar and the record count against the trailer (`^TRL(\\d+)$`, header `^HDR\\|`), encrypt into the age vault, record on the ledger. It must exit 0 with every file verified; afterwards (untimed) `custodian audit verify` and `custodian vault verify` must pass. `retry.attempts: 1`, so a fault shows instead of being retried. Peak RSS is the daemon's `VmHWM` from `/proc/PID/status` after the run (the daemon was started for that run only); CPU is the daemon's during the run plus the client's.")
	p("- Client CPU is user + system time of the command and its children (for sftp, its `ssh`); the server's (sshd) is not counted. \"Sync after\" is the median time of the `sync` run right after the command, the write-back its output still needed; for sftp and rclone it is included in their times (see above).")
	p("")

	for _, s := range append(slices.Clone(sum.workloads), refList(sum)...) {
		b.reportWorkload(&r, s)
	}

	p("## Peak memory of `custodian serve`")
	p("")
	p("| Workload |%s Peak |", roundHeaders(b.opts.Rounds))
	p("|---|%s---:|", strings.Repeat("---:|", b.opts.Rounds))
	for _, s := range append(slices.Clone(sum.workloads), refList(sum)...) {
		c := s.tool(toolCustodian)
		if c == nil {
			continue
		}
		cells := make([]string, b.opts.Rounds)
		for i := range cells {
			cells[i] = "—"
		}
		for _, m := range c.runs {
			if m.Round >= 1 && m.Round <= len(cells) && m.PeakRSS > 0 {
				cells[m.Round-1] = fmt.Sprintf("%.1f MiB", mib(m.PeakRSS))
			}
		}
		peak := "—"
		if s.rss > 0 {
			peak = fmt.Sprintf("**%.1f MiB**", mib(s.rss))
		}
		p("| %s: %s | %s | %s |", s.w.key, s.w.title, strings.Join(cells, " | "), peak)
	}
	p("")

	p("## Targets")
	p("")
	p("| Target | Measured | Status |")
	p("|---|---|---|")
	for _, t := range sum.targets {
		p("| %s | %s | %s |", t.what, mdCell(t.measured), t.status)
	}
	p("")
	if len(sum.failures) > 0 {
		p("## Failed runs")
		p("")
		for _, m := range b.results {
			if !m.ok() {
				p("- round %d, workload %s, %s:", m.Round, m.Workload, m.Tool)
				p("")
				p("  ```")
				for _, l := range strings.Split(strings.TrimSpace(m.Err), "\n") {
					p("  %s", l)
				}
				p("  ```")
			}
		}
		p("")
	}
	p("## Findings")
	p("")
	return r.String()
}

func roundHeaders(n int) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, " Round %d |", i)
	}
	return sb.String()
}

func (b *bench) reportWorkload(r *strings.Builder, s *workloadSummary) {
	p := func(format string, args ...any) { fmt.Fprintf(r, format+"\n", args...) }
	w := s.w
	heading := fmt.Sprintf("Workload %s: %s", w.key, w.title)
	if w.key == "A1" {
		heading += " (memory reference, custodian only)"
	}
	p("## %s", heading)
	p("")
	if w.single != "" {
		p("`%s`: %d bytes, %d records, plus its sidecar.", w.single, w.bytes, w.records)
	} else {
		p("`HR_CHG_20250101_0001.txt` … : %d files, %d bytes, %d records in all, plus %d sidecars.", w.files, w.bytes, w.records, w.files)
	}
	p("")
	p("| Tool |%s Median | Throughput | Client CPU | Sync after | custodian ÷ tool |", roundHeaders(b.opts.Rounds))
	p("|---|%s---:|---:|---:|---:|---:|", strings.Repeat("---:|", b.opts.Rounds))
	for _, t := range s.tools {
		cells := make([]string, b.opts.Rounds)
		for i := range cells {
			cells[i] = "—"
		}
		for _, m := range t.runs {
			if m.Round < 1 || m.Round > len(cells) {
				continue
			}
			if m.ok() {
				cells[m.Round-1] = fmtSeconds(m.Wall)
			} else {
				cells[m.Round-1] = "failed"
			}
		}
		med, thr, cpu, sync, ratio := "—", "—", "—", "—", "—"
		if t.ok {
			med = "**" + fmtSeconds(t.median) + "**"
			thr = fmt.Sprintf("%.0f MiB/s", mib(w.bytes)/t.median.Seconds())
			cpu, sync = fmtSeconds(t.cpu), fmtSeconds(t.sync)
		}
		if r, ok := s.ratios[t.tool]; ok {
			ratio = fmt.Sprintf("%.2f×", r)
		}
		p("| %s | %s | %s | %s | %s | %s | %s |", toolLabels[t.tool], strings.Join(cells, " | "), med, thr, cpu, sync, ratio)
	}
	p("")
	if w.key == "B" && b.hashcheck != nil {
		h := *b.hashcheck
		p("rclone **with its hash check on** (one run, without `--sftp-disable-hashcheck`): %s.", describeOnce(h))
		if h.Note != "" {
			p("")
			p("```")
			p("%s", h.Note)
			p("```")
		}
		p("")
	}
	if w.rate > 0 {
		var us []string
		for _, t := range s.tools {
			if t.ok {
				us = append(us, fmt.Sprintf("%s %.0f%%", t.tool, utilization(w, t.median)*100))
			}
		}
		p("Link utilization (the %.2f s the link needs for the data file at %s, divided by the median): %s.",
			float64(w.bytes)*8/w.rate, fmtRate(w.rate), strings.Join(us, ", "))
		p("")
	}
	if w.link != nil && w.single == "" && !b.opts.WANSFTPSmall {
		p("OpenSSH sftp is not run on the small files through the delay line: it fetches one file at a time with about a dozen round trips each (about 0.4 s per file at 30 ms), so 2,000 files would take over ten minutes per round. `--wan-sftp-small` runs it.")
		p("")
	}
	p("Throughput counts the data files only (sidecars excluded).")
	p("")
}

// mdCell makes text safe inside a table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

// machine describes the machine and the tools' versions.
func (b *bench) machine() [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v == "" {
			v = "unknown"
		}
		out = append(out, [2]string{k, v})
	}
	add("CPU", procField("/proc/cpuinfo", "model name"))
	add("Cores", fmt.Sprint(runtime.NumCPU()))
	mem := procField("/proc/meminfo", "MemTotal")
	var kb int64
	if _, err := fmt.Sscanf(mem, "%d kB", &kb); err == nil {
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	add("Memory", mem)
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	add("Kernel", "Linux "+strings.TrimSpace(string(kernel)))
	add("OS", strings.Trim(procField("/etc/os-release", "PRETTY_NAME"), `"`))
	add("Go", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	if b.paths.ssh != "" {
		add("OpenSSH", firstOutputLine(b.paths.ssh, "-V"))
	}
	if rc := b.paths.rclone; rc != "" {
		add("rclone", firstOutputLine(rc, "version"))
	} else if rc, err := exec.LookPath("rclone"); err == nil {
		add("rclone", firstOutputLine(rc, "version")+" (not run)")
	}
	add("custodian", b.commit())
	add("Work directory", os.TempDir()+" ("+fsType(b.work)+")")
	return out
}

// procField returns the value of "key: value" or "key=value" in a file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, sep := range []string{":", "="} {
			if k, v, ok := strings.Cut(line, sep); ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

func firstOutputLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// commit names the repository's commit, if the repository is a git checkout.
func (b *bench) commit() string {
	if b.opts.RepoRoot == "" {
		return ""
	}
	rev := firstOutputLine("git", "-C", b.opts.RepoRoot, "rev-parse", "--short", "HEAD")
	if rev == "" || strings.Contains(rev, " ") {
		return ""
	}
	if out, err := exec.Command("git", "-C", b.opts.RepoRoot, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		rev += " + uncommitted changes"
	}
	return "commit " + rev
}

// fsType names the file system holding path, from /proc/self/mounts.
func fsType(path string) string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown file system"
	}
	best, typ := "", "unknown file system"
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		if (path == mnt || strings.HasPrefix(path, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) >= len(best) {
			best, typ = mnt, f[2]
		}
	}
	return typ
}

// writeReport writes head, then the findings marker followed by the
// findings of an existing report (or a placeholder), atomically.
func writeReport(path, head string) error {
	tail := findingsMarker + "\n" + findingsPlaceholder
	if old, err := os.ReadFile(path); err == nil {
		if i := markerIndex(old); i >= 0 {
			tail = string(old[i:])
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".benchmarks-*.md")
	if err != nil {
		return err
	}
	_, err = f.WriteString(head + tail)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// markerIndex returns the offset of the line holding only the findings
// marker, or -1.
func markerIndex(b []byte) int {
	off := 0
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == findingsMarker {
			return off
		}
		off += len(line)
	}
	return -1
}

func fmtSeconds(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtBytes(n int64) string {
	switch {
	case n >= gib:
		return fmt.Sprintf("%.2f GiB", float64(n)/gib)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func lower(s string) string { return strings.ToLower(s) }

func fmtRateOr(r float64) string {
	if r <= 0 {
		return "the --rate given (none in this run)"
	}
	return fmtRate(r)
}
