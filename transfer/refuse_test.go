package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/synth"
)

// TestConformanceNotRegularFiles: a symbolic link and a directory that match
// the pattern are refused with their reason, shown in every run's output
// and recorded on the ledger once. With follow_symlinks a link to a regular
// file inside remote_dir is pulled; links leading outside, dangling or to
// a directory stay refused.
func TestConformanceNotRegularFiles(t *testing.T) {
	for _, pv := range providers {
		t.Run(pv.name, func(t *testing.T) { testNotRegular(t, pv.start(t)) })
	}
}

func testNotRegular(t *testing.T, p *provider) {
	follow := false
	e := newEnv(t, p, func(j *configs.Job, _ *configs.Source) {})
	setFollow := func(on bool) {
		follow = on
		cfg := *e.cfg
		job := *cfg.Jobs[0]
		job.FollowSymlinks = on
		cfg.Jobs = []*configs.Job{&job}
		e.runner.SetConfig(&cfg)
	}
	// The link's target does not match the pattern; its sidecar is named
	// for the link.
	if err := synth.GenerateTree(p.dir, []synth.FileSpec{{Name: "HR_link.txt", Options: synth.Options{Records: 7, Seed: 3}}}); err != nil {
		t.Fatal(err)
	}
	must(t, os.Rename(filepath.Join(p.dir, "HR_link.txt"), filepath.Join(p.dir, "target.dat")))
	must(t, os.Symlink("target.dat", filepath.Join(p.dir, "HR_link.txt")))
	must(t, os.Mkdir(filepath.Join(p.dir, "HR_dir.txt"), 0o755))
	outside := filepath.Join(filepath.Dir(p.dir), "outside.txt")
	must(t, os.WriteFile(outside, []byte("HDR|x\nTRL0\n"), 0o644))
	must(t, os.Symlink("../outside.txt", filepath.Join(p.dir, "HR_out.txt")))
	must(t, os.Symlink("missing.dat", filepath.Join(p.dir, "HR_dangling.txt")))
	must(t, os.Symlink("HR_dir.txt", filepath.Join(p.dir, "HR_todir.txt")))
	e.put(synth.FileSpec{Name: "HR_ok.txt", Options: synth.Options{Records: 5, Seed: 1}})

	refused := []string{`"HR_link.txt"`, `"HR_dir.txt"`, `"HR_out.txt"`, `"HR_dangling.txt"`, `"HR_todir.txt"`}
	res := e.run()
	if o := e.outcome(res, "HR_ok.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("%+v", o)
	}
	for _, n := range refused {
		if o := e.outcome(res, n); o.Outcome != "refused" || o.Repeat || o.Reason == "" {
			t.Errorf("%s: %+v", n, o)
		}
	}
	if r := e.outcome(res, `"HR_link.txt"`).Reason; !strings.Contains(r, "follow_symlinks") {
		t.Errorf("the refusal of a link must name the option that allows it: %s", r)
	}
	if r := e.outcome(res, `"HR_dir.txt"`).Reason; !strings.Contains(r, "directory") {
		t.Errorf("the refusal of a directory must say so: %s", r)
	}
	if !res.Failed() {
		t.Error("a first refusal must make the run fail")
	}
	if n := len(e.events("file.refused")); n != len(refused) {
		t.Fatalf("%d refusals on the ledger, want %d", n, len(refused))
	}

	// Again: shown, not recorded again, not failing the run again.
	res = e.run()
	for _, n := range refused {
		if o := e.outcome(res, n); o.Outcome != "refused" || !o.Repeat || !strings.Contains(o.Reason, "ledger event") {
			t.Errorf("second run, %s: %+v", n, o)
		}
	}
	if res.Failed() {
		t.Errorf("refusals already on the ledger fail the run again: %+v", res.Files)
	}
	if n := len(e.events("file.refused")); n != len(refused) {
		t.Fatalf("%d refusals on the ledger after a second run, want %d", n, len(refused))
	}

	setFollow(true)
	res = e.run()
	o := e.outcome(res, "HR_link.txt")
	if !follow || o.Outcome != string(audit.StateVerified) || o.Records != 7 {
		t.Fatalf("a link to a regular file inside remote_dir, followed: %+v", o)
	}
	d, _, _ := e.led.Dataset(o.DatasetID)
	if !strings.HasSuffix(d.Integrity["symlink_target"], "/target.dat") || !strings.HasSuffix(d.RemotePath, "/HR_link.txt") {
		t.Errorf("dataset must name the link and its target: %q %q", d.RemotePath, d.Integrity["symlink_target"])
	}
	for _, n := range refused[1:] {
		if o := e.outcome(res, n); o.Outcome != "refused" {
			t.Errorf("with follow_symlinks, %s: %+v", n, o)
		}
	}
	if r := e.outcome(res, `"HR_out.txt"`).Reason; !strings.Contains(r, "outside remote_dir") {
		t.Errorf("%s", r)
	}
	if res := e.run(); e.outcome(res, `"HR_out.txt"`).Repeat != true || res.Skipped != 2 {
		t.Errorf("fourth run: %+v", res)
	}
	e.checkInvariants()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
