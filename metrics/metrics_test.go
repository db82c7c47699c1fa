package metrics

import (
	"strings"
	"testing"
)

// TestListenLoopbackOnly: the listener itself refuses a non-loopback
// address, whatever the caller checked before.
func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9464", "example.org:9464"} {
		if ln, err := Listen(addr); err == nil {
			ln.Close()
			t.Errorf("%s: listening", addr)
		} else if !strings.Contains(err.Error(), "loopback") && !strings.Contains(err.Error(), "metrics.listen") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

// TestSettersReported: the hooks the accounts work will call are what the
// gauges report.
func TestSettersReported(t *testing.T) {
	m := New(Sources{})
	m.SetPendingApprovals(3)
	m.SetAccountsLocked(2)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			if x.GetGauge() != nil {
				got[mf.GetName()] = x.GetGauge().GetValue()
			}
		}
	}
	if got["custodian_approvals_pending"] != 3 || got["custodian_accounts_locked"] != 2 || got["custodian_vault_sealed"] != 1 {
		t.Errorf("gauges: %v", got)
	}
}
