// Package failpoint crashes the process at named points, for crash tests.
//
// A test starts custodian with CUSTODIAN_FAILPOINT=name (or name@N for the
// Nth time the point is reached); when the code reaches Hit(name) the process
// sends itself SIGKILL, exactly as a power cut or an OOM kill would end it:
// no deferred function runs, no buffer is flushed. Without the variable Hit
// costs one atomic load. The idea follows bbolt's gofail comments, without a
// code generator.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable naming the armed failpoint.
const Env = "CUSTODIAN_FAILPOINT"

var (
	armed string
	at    int64 = 1
	hits  atomic.Int64
	on    atomic.Bool
)

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	name, n, found := strings.Cut(v, "@")
	if found {
		if k, err := strconv.ParseInt(n, 10, 64); err == nil && k > 0 {
			at = k
		}
	}
	armed = name
	on.Store(true)
}

// Hit kills the process if name is the armed failpoint and this is the
// armed occurrence.
func Hit(name string) {
	if !on.Load() || name != armed {
		return
	}
	if hits.Add(1) == at {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns
	}
}
