package daemon

import (
	"context"
	"errors"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/proof"
)

// keepCheckpoint writes the ledger's signed checkpoint to checkpoints.dir
// when the ledger grew since the last one kept there. It writes nothing
// while the ledger is damaged: a kept checkpoint is a statement auditors
// rely on. It returns the file written, or "".
func (d *Daemon) keepCheckpoint(trigger string) (string, error) {
	if d.health.damaged() {
		return "", nil
	}
	cp, err := d.Ledger.Checkpoint()
	if errors.Is(err, audit.ErrEmpty) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	size, err := proof.CheckpointSize(cp)
	if err != nil {
		return "", err
	}
	dir := d.Runner.CurrentConfig().CheckpointDir()
	kept, err := proof.ListKept(dir)
	if err != nil {
		return "", err
	}
	if len(kept) > 0 && kept[len(kept)-1].Size >= size {
		return "", nil
	}
	path, written, err := proof.KeepCheckpoint(dir, cp)
	if err != nil || !written {
		return "", err
	}
	d.Log.Info().Str("file", path).Int64("size", size).Str("trigger", trigger).Msg("checkpoint kept")
	return path, nil
}

// checkpointLoop keeps a checkpoint at start and every checkpoints.every
// (re-read after each, so a reload changes it) until ctx ends.
func (d *Daemon) checkpointLoop(ctx context.Context) {
	trigger := "start"
	for {
		if _, err := d.keepCheckpoint(trigger); err != nil {
			d.Log.Error().Err(err).Msg("cannot keep the ledger's checkpoint; trying again at the next interval")
		}
		trigger = "schedule"
		every := d.Runner.CurrentConfig().Checkpoints.Every.Duration
		if every <= 0 {
			every = configs.DefaultCheckpointsEvery
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
