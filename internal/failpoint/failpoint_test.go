package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func TestHitKillsOnlyAtTheArmedOccurrence(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Hit("other")
		Hit("p") // first occurrence: armed @2, survives
		os.Stdout.WriteString("survived first\n")
		Hit("p") // dies here
		os.Stdout.WriteString("survived second\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHitKillsOnlyAtTheArmedOccurrence$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"=p@2")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("want death by SIGKILL, got %v", err)
	}
	if string(out) != "survived first\n" {
		t.Fatalf("output %q", out)
	}
}

func TestUnarmedHitIsANoOp(t *testing.T) {
	if on.Load() {
		t.Skip("armed by the environment")
	}
	Hit("anything")
}
