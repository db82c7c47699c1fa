// Command custodian receives household-registry files over SFTP, proves them
// complete, stores them encrypted and keeps a tamper-evident custody ledger.
// Every command is in package internal/cli; see `custodian --help`.
package main

import (
	"os"
	"runtime/debug"

	"custodian/internal/cli"
)

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT says
// otherwise. A transfer's live memory is bounded (ranged reads' windows,
// pipeline chunks, files in flight: about 30 MiB), but what SSH and SFTP
// allocate per packet is garbage at once, and the collector would let the
// heap grow to twice the live memory before collecting it. The limit makes
// it collect sooner instead, so the daemon's memory stays flat under 64 MiB.
const memoryLimit = 44 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	os.Exit(cli.Execute())
}
