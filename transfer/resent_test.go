package transfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/synth"
)

// TestConformanceResent: a provider re-sends a corrected file under a name
// already on the ledger. It must be read, verified and stored as a new
// dataset that supersedes the earlier one, before after_pull touches it;
// with move: the archived original is never replaced. The corrected file
// has the same size and modification time as the original: only the new
// sidecar tells them apart. Run against both servers for delete, move: and
// keep.
func TestConformanceResent(t *testing.T) {
	for _, pv := range providers {
		t.Run(pv.name, func(t *testing.T) {
			for _, mode := range []string{"delete", "move", "keep"} {
				t.Run(mode, func(t *testing.T) { testResent(t, pv.start(t), mode) })
			}
		})
	}
}

func testResent(t *testing.T, p *provider, mode string) {
	archiveLocal := filepath.Join(filepath.Dir(p.dir), "archive")
	archiveRemote := path.Join(path.Dir(p.remoteDir), "archive")
	mustMkdir(t, archiveLocal)
	e := newEnv(t, p, func(j *configs.Job, _ *configs.Source) {
		ap := mode
		if mode == "move" {
			ap = "move:" + archiveRemote
		}
		j.AfterPull = afterPull(t, ap)
	})
	const name = "HR_1.txt"
	var v1 bytes.Buffer
	if _, _, err := synth.WriteFile(&v1, synth.Options{Records: 20, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	// The correction: one record changed, same length.
	v2 := bytes.Clone(v1.Bytes())
	i := bytes.IndexByte(v2, '\n') + 20
	v2[i] = map[bool]byte{true: 'A', false: 'B'}[v2[i] != 'A']
	deliver := func(content []byte, mtime time.Time) {
		t.Helper()
		e.write(name, content)
		sum := sha256.Sum256(content)
		e.write(name+".sha256", []byte(synth.Sidecar(hex.EncodeToString(sum[:]), name)))
		if err := os.Chtimes(filepath.Join(p.dir, name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	deliver(v1.Bytes(), mtime)
	first := e.outcome(e.run(), name)
	if first.Outcome != string(audit.StateVerified) {
		t.Fatalf("first delivery: %+v", first)
	}

	deliver(v2, mtime) // same name, size and time; new bytes and sidecar
	res := e.run()
	second := e.outcome(res, name)
	if second.Outcome != string(audit.StateVerified) || second.DatasetID == first.DatasetID || second.Supersedes != first.DatasetID || second.Resent == "" {
		t.Fatalf("the corrected file must be a new verified dataset superseding %s: %+v (skipped %d)", first.DatasetID, second, res.Skipped)
	}
	d1, _, _ := e.led.Dataset(first.DatasetID)
	if got := e.decrypt(d1.ObjectID); !bytes.Equal(got, v1.Bytes()) {
		t.Fatal("the earlier dataset lost its bytes")
	}
	d2, _, _ := e.led.Dataset(second.DatasetID)
	if got := e.decrypt(d2.ObjectID); !bytes.Equal(got, v2) {
		t.Fatal("the new dataset does not hold the corrected bytes")
	}
	if d2.Supersedes != first.DatasetID {
		t.Fatalf("dataset %s supersedes %q", d2.ID, d2.Supersedes)
	}
	if id, _, _ := e.led.RemoteDataset("moi", path.Join(p.remoteDir, name)); id != second.DatasetID {
		t.Fatalf("remote index names %s", id)
	}
	tl, err := e.led.Timeline(first.DatasetID)
	if err != nil {
		t.Fatal(err)
	}
	if last := tl[len(tl)-1]; last.Type != "dataset.superseded" || last.Details["superseded_by"] != second.DatasetID {
		t.Fatalf("the earlier dataset's timeline must end with its supersession: %+v", last)
	}

	switch mode {
	case "delete":
		if _, err := os.Stat(filepath.Join(p.dir, name)); !os.IsNotExist(err) {
			t.Errorf("the stored corrected file should be deleted: %v", err)
		}
	case "move":
		for file, want := range map[string][]byte{name: v1.Bytes(), name + "." + second.DatasetID: v2} {
			got, err := os.ReadFile(filepath.Join(archiveLocal, file))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("archive/%s: %v; the archive must keep both deliveries", file, err)
			}
		}
		if evs := e.events("remote.move"); len(evs) != 2 || !strings.HasSuffix(evs[1].Details["moved_to"], "."+second.DatasetID) {
			t.Errorf("moves on the ledger: %+v", evs)
		}
	case "keep":
		if got, _ := os.ReadFile(filepath.Join(p.dir, name)); !bytes.Equal(got, v2) {
			t.Error("keep must leave the file on the server")
		}
	}
	if res := e.run(); len(res.Files) != 0 || (mode == "keep" && res.Skipped != 1) {
		t.Errorf("a third run with nothing new: %+v", res)
	}
	e.checkInvariants()
}

// TestResentTouched: a file touched without changing its bytes, whose
// sidecar proves it, is not pulled again.
func TestResentTouched(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), nil)
	e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	if o := e.outcome(e.run(), "HR_1.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("%+v", o)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(e.p.dir, "HR_1.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if res := e.run(); len(res.Files) != 0 || res.Skipped != 1 {
		t.Fatalf("a touched file with the same digest was pulled again: %+v", res)
	}
	e.checkInvariants()
}

// TestResentChangeFile: a change file re-sent with other bytes is a new
// delivery, held as a repeat of its sequence number for the officer.
func TestResentChangeFile(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
		j.Kind, j.Sequence, j.Pattern, j.AfterPull = "change", `_(\d{4})\.txt$`, "HR_CHG_*.txt", afterPull(t, "delete")
	})
	chg := func(seq int, seed uint64) synth.FileSpec {
		return synth.FileSpec{Name: fmt.Sprintf("HR_CHG_20261130_%04d.txt", seq), Options: synth.Options{Records: 5 + int(seed), Seed: seed, Seq: seq}}
	}
	e.put(chg(1, 1), chg(2, 1))
	res := e.run()
	first := e.outcome(res, "HR_CHG_20261130_0002.txt")
	if res.Failed() || first.Outcome != string(audit.StateVerified) {
		t.Fatalf("%+v", res)
	}
	e.put(chg(2, 2)) // re-sent with other content
	res = e.run()
	o := e.outcome(res, "HR_CHG_20261130_0002.txt")
	if o.Outcome != string(audit.StateHeld) || !strings.Contains(o.Reason, "repeat") || o.Supersedes != first.DatasetID {
		t.Fatalf("a re-sent change file must be held as a repeat, superseding %s: %+v", first.DatasetID, o)
	}
	if !res.Failed() {
		t.Fatal("a held re-sent file must make the run fail")
	}
	if _, err := os.Stat(filepath.Join(e.p.dir, "HR_CHG_20261130_0002.txt")); !os.IsNotExist(err) {
		t.Fatalf("stored (held) file should be deleted after storage: %v", err)
	}
	e.checkInvariants()
}

// directRun opens a session to e's provider for calling a jobRun's methods
// directly.
func (e *env) directRun(t *testing.T) (*jobRun, *sftp.Client) {
	cfg := e.runner.CurrentConfig()
	job, _ := cfg.Job("pull")
	remote, err := Dial(t.Context(), job.Source, cfg.Sources[job.Source])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remote.Close() })
	sess, err := remote.session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	j, err := newJobRun(e.runner, cfg, job, RunRequest{Actor: "officer.a"}, &RunResult{}, e.runner.Log)
	if err != nil {
		t.Fatal(err)
	}
	return j, sess
}

// TestAfterPullLeavesChangedFile: when the file on the server is no longer
// the one stored (re-sent between listing and after_pull), it is left in
// place and the ledger says why.
func TestAfterPullLeavesChangedFile(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) { j.AfterPull = afterPull(t, "delete") })
	e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	j, sess := e.directRun(t)
	// The dataset stored 10 bytes at another time: the file must stay.
	j.afterPull(sess, "ds-x", path.Join(e.p.remoteDir, "HR_1.txt"), 10, time.Unix(0, 0))
	if _, err := os.Stat(filepath.Join(e.p.dir, "HR_1.txt")); err != nil {
		t.Fatalf("a file that is not the stored one was removed: %v", err)
	}
	if evs := e.events("remote.delete_failed"); len(evs) != 1 || !strings.Contains(evs[0].Details["error"], "left in place") {
		t.Fatalf("%+v", evs)
	}
}

// TestMoveNeverReplaces: a move into an archive that already holds the name
// picks NAME.DATASET; if that exists too, the move fails and says so.
func TestMoveNeverReplaces(t *testing.T) {
	p := startInProcess(t, nil)
	archive := filepath.Join(filepath.Dir(p.dir), "archive")
	mustMkdir(t, archive)
	e := newEnv(t, p, func(j *configs.Job, _ *configs.Source) { j.AfterPull = afterPull(t, "move:/archive") })
	if err := os.WriteFile(filepath.Join(archive, "HR_1.txt"), []byte("older archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	o := e.outcome(e.run(), "HR_1.txt")
	if got, _ := os.ReadFile(filepath.Join(archive, "HR_1.txt")); string(got) != "older archive" {
		t.Fatal("the archived file was replaced")
	}
	if _, err := os.Stat(filepath.Join(archive, "HR_1.txt."+o.DatasetID)); err != nil {
		t.Fatalf("not moved under another name: %v", err)
	}
	// Both names taken: the move fails and the file stays.
	e.put(synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2}})
	for _, n := range []string{"HR_2.txt", "HR_2.txt.ds-taken"} {
		if err := os.WriteFile(filepath.Join(archive, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(p.dir, "HR_2.txt"))
	if err != nil {
		t.Fatal(err)
	}
	j, sess := e.directRun(t)
	j.afterPull(sess, "ds-taken", path.Join(p.remoteDir, "HR_2.txt"), fi.Size(), fi.ModTime().Truncate(time.Second))
	for _, n := range []string{"HR_2.txt", "HR_2.txt.ds-taken"} {
		if got, _ := os.ReadFile(filepath.Join(archive, n)); string(got) != n {
			t.Errorf("archive/%s was replaced", n)
		}
	}
	if _, err := os.Stat(filepath.Join(p.dir, "HR_2.txt")); err != nil {
		t.Errorf("the file must stay on the server when it cannot be moved: %v", err)
	}
	if evs := e.events("remote.move_failed"); len(evs) != 1 || !strings.Contains(evs[0].Details["error"], "already holds") {
		t.Fatalf("%+v", evs)
	}
}
