package configs

import _ "embed"

// Example is the commented example configuration, custodian.example.yaml.
//
//go:embed custodian.example.yaml
var Example []byte
