package vault

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Flush makes durable every object closed (Writer.Close) before the call,
// and the renames that put them in objects/. It syncs the vault's whole
// filesystem (syncfs(2): one journal commit), and concurrent callers share
// one sync: a caller waits for the next sync to start after its call, so a
// batch of writers closing together pays for one flush. The vault belongs
// on a local filesystem of a dedicated host, where syncing the filesystem
// costs about one fsync.
func (v *Vault) Flush() error {
	return v.flush.do(func() error {
		d, err := os.Open(v.dir)
		if err != nil {
			return fmt.Errorf("vault: flush: %w", err)
		}
		defer d.Close()
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return fmt.Errorf("vault: flush: syncfs: %w", err)
		}
		return nil
	})
}

// groupSync runs a sync function for many callers: each caller needs a run
// that started after it called; callers waiting together share one run.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // runs started
	done    uint64 // runs finished
	running bool
	errs    map[uint64]error // results of recent runs
}

func (g *groupSync) do(sync func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = newCond(&g.mu)
		g.errs = map[uint64]error{}
	}
	// A run already in progress may have started before our writes were
	// complete: we need the one after it.
	want := g.started + 1
	for g.done < want {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := sync()
		g.mu.Lock()
		g.running = false
		g.done = gen
		g.errs[gen] = err
		delete(g.errs, gen-8) // keep a few for slow waiters
		g.cond.Broadcast()
	}
	return g.errs[want]
}

var newCond = sync.NewCond
