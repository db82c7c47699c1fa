package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"custodian/configs"
	"custodian/internal/synth"
	"custodian/transfer/integrity"
	"custodian/vault"
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

// BenchmarkPipeline is the single pass without the network: SHA-256, record
// count and age encryption into a vault object, fed in 256 KiB chunks as
// pkg/sftp's WriteTo delivers them.
func BenchmarkPipeline(b *testing.B) {
	var buf bytes.Buffer
	if _, _, _, err := synth.WriteSized(&buf, 64<<20, 1); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	dir := b.TempDir()
	if err := vault.Init(dir, testPass, vault.InitOptions{ScryptWorkFactor: 10}); err != nil {
		b.Fatal(err)
	}
	v, err := vault.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	spec, err := integrity.NewCountSpec(`^HDR\|`, `^TRL(\d+)$`, 0, false, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := v.Create(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		sum, counter := sha256.New(), integrity.NewCounter(spec)
		p := newPipeline(w, sum, counter)
		for off := 0; off < len(data); off += 256 << 10 {
			if _, err := p.Write(data[off:min(off+256<<10, len(data))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		counter.Close()
		if r := counter.Result(); len(r.Problems) > 0 {
			b.Fatal(r.Problems)
		}
		w.Abort()
	}
}

// BenchmarkLargeFileOpenSSH pulls one large extract from the real OpenSSH
// sshd (skipped where absent): the whole single pass over the network.
// CUSTODIAN_BENCH_MIB sets the size (default 256); CUSTODIAN_BENCH_SESSIONS
// and CUSTODIAN_BENCH_CONNECTIONS the source's sessions and connections
// (default: the configuration's defaults).
func BenchmarkLargeFileOpenSSH(b *testing.B) {
	size := int64(256)
	if s := os.Getenv("CUSTODIAN_BENCH_MIB"); s != "" {
		fmt.Sscan(s, &size)
	}
	p := startOpenSSH(b)
	f, err := os.Create(filepath.Join(p.dir, "HR_FULL_1.txt"))
	if err != nil {
		b.Fatal(err)
	}
	sum, _, n, err := synth.WriteSized(f, size<<20, 1)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "HR_FULL_1.txt.sha256"), []byte(synth.Sidecar(sum, "HR_FULL_1.txt")), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, p, func(_ *configs.Job, s *configs.Source) {
			s.Sessions, s.Connections = configs.DefaultSessions, configs.DefaultConnections
			fmt.Sscan(os.Getenv("CUSTODIAN_BENCH_SESSIONS"), &s.Sessions)
			fmt.Sscan(os.Getenv("CUSTODIAN_BENCH_CONNECTIONS"), &s.Connections)
		})
		b.StartTimer()
		res := e.run()
		if res.Failed() {
			b.Fatalf("%+v", res)
		}
	}
}
