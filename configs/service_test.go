package configs

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestServiceUnitDirectives: the unit is Type=notify with a watchdog and
// carries the hardening the issue lists (checked everywhere, systemd or
// not).
func TestServiceUnitDirectives(t *testing.T) {
	b, err := os.ReadFile("custodian.service")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k+"="+v] = true
			set[k] = true
		}
	}
	for _, want := range []string{
		"Type=notify", "WatchdogSec", "User=custodian", "UMask=0077", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/custodian", "PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
		"LockPersonality=yes", "RestrictNamespaces=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
		"ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes", "RestrictRealtime=yes",
		"RestrictSUIDSGID=yes", "PrivateDevices=yes",
	} {
		if !set[want] {
			t.Errorf("custodian.service lacks %s", want)
		}
	}
	if set["PrivateUsers=yes"] {
		t.Error("PrivateUsers=yes makes root's directories appear as nobody's, and serve then refuses data_dir")
	}
}

// exposureRE finds systemd-analyze's overall rating.
var exposureRE = regexp.MustCompile(`Overall exposure level for custodian\.service: ([0-9.]+)`)

// TestServiceUnitExposure runs `systemd-analyze security --offline=yes` on
// the unit where systemd-analyze exists (it may skip: CI has no systemd)
// and requires an exposure of at most 2.0 ("OK" or better).
func TestServiceUnitExposure(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	out, err := exec.Command(bin, "security", "--offline=yes", "--no-pager", "custodian.service").CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		if err != nil && strings.Contains(string(out), "offline") {
			t.Skipf("this systemd-analyze cannot check a unit file offline: %v", err)
		}
		t.Fatalf("no exposure level in the output (%v):\n%s", err, out)
	}
	exposure, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	if exposure > 2.0 {
		t.Errorf("exposure %.1f, want at most 2.0; systemd-analyze says:\n%s", exposure, out)
	}
	t.Logf("exposure %.1f", exposure)
}
