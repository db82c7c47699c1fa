package configs

import (
	_ "embed"
	_ "time/tzdata" // CRON_TZ=Asia/Taipei must validate and run on hosts without a zoneinfo database
)

// Example is the commented example configuration, custodian.example.yaml.
//
//go:embed custodian.example.yaml
var Example []byte
