package configs

import (
	"path/filepath"
	"time"
)

// Checkpoints has the daemon keep the ledger's signed checkpoint on disk
// (the top-level key checkpoints:): at start when the ledger grew since the
// last one kept, and every Every after that, as Dir/checkpoint-<size>.txt.
// Auditors copy them off the host; each later proves, with a consistency
// proof, that the ledger only grew since.
type Checkpoints struct {
	Every Duration `yaml:"every"`
	// Dir defaults to data_dir/checkpoints; a relative path is resolved
	// against the configuration file's directory.
	Dir string `yaml:"dir"`
}

// Bounds of checkpoints.every.
const (
	DefaultCheckpointsEvery = 24 * time.Hour
	MinCheckpointsEvery     = time.Minute
	MaxCheckpointsEvery     = 31 * 24 * time.Hour
)

func (c *Config) applyCheckpointsDefaults() {
	if c.Checkpoints.Every.Duration == 0 {
		c.Checkpoints.Every.Duration = DefaultCheckpointsEvery
	}
}

func (c *Config) validateCheckpoints(p *problems) {
	if e := c.Checkpoints.Every.Duration; e < MinCheckpointsEvery || e > MaxCheckpointsEvery {
		p.add("checkpoints.every", "%s is out of range; use %s to %s (31 days), e.g. 24h", shortDuration(e), shortDuration(MinCheckpointsEvery), shortDuration(MaxCheckpointsEvery))
	}
	if d := c.Checkpoints.Dir; d != "" && c.DataDir != "" && filepath.Clean(d) == filepath.Clean(c.DataDir) {
		p.add("checkpoints.dir", "%q is data_dir itself; use a directory of its own, e.g. %s", d, filepath.Join(c.DataDir, "checkpoints"))
	}
}

// CheckpointDir is where the daemon keeps checkpoints: checkpoints.dir,
// or data_dir/checkpoints.
func (c *Config) CheckpointDir() string {
	if c.Checkpoints.Dir != "" {
		return c.Checkpoints.Dir
	}
	return filepath.Join(c.DataDir, "checkpoints")
}
