// Command custodian receives household-registry files over SFTP, proves them
// complete, stores them encrypted and keeps a tamper-evident custody ledger.
// Every command is in package internal/cli; see `custodian --help`.
package main

import (
	"os"

	"custodian/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
