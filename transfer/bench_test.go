package transfer

import (
	"fmt"
	"testing"

	"custodian/configs"
	"custodian/internal/synth"
)

// BenchmarkSmallFiles ingests batches of ~20 KiB files from the in-process
// server: the per-file overhead (SFTP round trips, fsyncs, ledger commits).
func BenchmarkSmallFiles(b *testing.B) {
	const files = 200
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := startInProcess(b, nil)
		e := newEnv(b, p, func(_ *configs.Job, s *configs.Source) { s.Sessions = 4 })
		var specs []synth.FileSpec
		for k := 0; k < files; k++ {
			specs = append(specs, synth.FileSpec{Name: fmt.Sprintf("HR_%04d.txt", k), Options: synth.Options{Records: 250, Seed: uint64(k)}})
		}
		if err := synth.GenerateTree(p.dir, specs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res := e.run()
		b.StopTimer()
		if len(res.Files) != files || res.Failed() {
			b.Fatalf("run: %d files, failed %v", len(res.Files), res.Failed())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*files), "µs/file")
}
