package configs

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVerifyEvery: the daemon's scheduled full ledger verification is a
// top-level key, strictly parsed, 24h by default, and bounded.
func TestVerifyEvery(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Verify.Every.Duration != DefaultVerifyEvery || DefaultVerifyEvery != 24*time.Hour {
		t.Errorf("default verify.every = %v", cfg.Verify.Every)
	}
	cfg, err = Parse([]byte(minimal+"verify: {every: 6h}\n"), "/etc/custodian")
	if err != nil || cfg.Verify.Every.Duration != 6*time.Hour {
		t.Fatalf("verify: {every: 6h}: %v %v", cfg, err)
	}
	for _, bad := range []string{"10s", "-1h", "800h"} {
		_, err := Parse([]byte(minimal+"verify: {every: "+bad+"}\n"), "/etc/custodian")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "verify.every: "+bad+" is out of range") {
			t.Errorf("verify.every %s: %v", bad, err)
		}
	}
	if _, err := Parse([]byte(minimal+"verify: {evry: 6h}\n"), "/etc/custodian"); !errors.Is(err, ErrParse) {
		t.Errorf("a misspelt key must be refused: %v", err)
	}
}

// TestCheckpoints: checkpoints.every is 24h by default and bounded, the
// directory defaults to data_dir/checkpoints and is resolved like every
// path, and errors name the field.
func TestCheckpoints(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Checkpoints.Every.Duration != 24*time.Hour || cfg.CheckpointDir() != filepath.Join(cfg.DataDir, "checkpoints") {
		t.Errorf("defaults: every %v, dir %s", cfg.Checkpoints.Every, cfg.CheckpointDir())
	}
	cfg, err = Parse([]byte(minimal+"checkpoints: {every: 6h, dir: kept}\n"), "/etc/custodian")
	if err != nil || cfg.Checkpoints.Every.Duration != 6*time.Hour || cfg.CheckpointDir() != "/etc/custodian/kept" {
		t.Fatalf("checkpoints: {every: 6h, dir: kept}: %v %+v", err, cfg)
	}
	for _, bad := range []string{"10s", "-1h", "800h"} {
		_, err := Parse([]byte(minimal+"checkpoints: {every: "+bad+"}\n"), "/etc/custodian")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "checkpoints.every: "+bad+" is out of range") {
			t.Errorf("checkpoints.every %s: %v", bad, err)
		}
	}
	if _, err := Parse([]byte(minimal+"checkpoints: {dir: "+cfg.DataDir+"}\n"), "/etc/custodian"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "checkpoints.dir:") {
		t.Errorf("data_dir as checkpoints.dir: %v", err)
	}
	if _, err := Parse([]byte(minimal+"checkpoints: {evry: 6h}\n"), "/etc/custodian"); !errors.Is(err, ErrParse) {
		t.Errorf("a misspelt key must be refused: %v", err)
	}
}
