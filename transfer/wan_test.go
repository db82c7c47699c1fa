package transfer

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custodian/configs"
	"custodian/internal/synth"
)

// delayProxy forwards loopback connections to target, holding every byte
// for half of rtt in each direction (the benchmark harness has the full
// delay line, bench/harness/delay.go; this is the test's small copy).
func delayProxy(t testing.TB, target string, rtt time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	pipe := func(dst, src net.Conn) {
		type seg struct {
			b   []byte
			due time.Time
		}
		q := make(chan seg, 4096)
		go func() {
			for s := range q {
				time.Sleep(time.Until(s.due))
				if _, err := dst.Write(s.b); err != nil {
					src.Close()
				}
			}
			dst.Close()
		}()
		for {
			b := make([]byte, 64<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- seg{b[:n], time.Now().Add(rtt / 2)}
			}
			if err != nil {
				close(q)
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return ln.Addr().String()
}

// BenchmarkWANOpenSSH pulls one extract from the real sshd through a delay
// line of CUSTODIAN_BENCH_RTT (default 30ms); CUSTODIAN_BENCH_MIB sets the size.
func BenchmarkWANOpenSSH(b *testing.B) {
	size, rtt := int64(128), 30*time.Millisecond
	fmt.Sscan(os.Getenv("CUSTODIAN_BENCH_MIB"), &size)
	if s := os.Getenv("CUSTODIAN_BENCH_RTT"); s != "" {
		rtt, _ = time.ParseDuration(s)
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
	os.WriteFile(filepath.Join(p.dir, "HR_FULL_1.txt.sha256"), []byte(synth.Sidecar(sum, "HR_FULL_1.txt")), 0o644)
	addr := delayProxy(b, p.src.Address, rtt)
	kh, _ := os.ReadFile(p.src.KnownHosts)
	khPath := filepath.Join(b.TempDir(), "kh")
	_, port, _ := net.SplitHostPort(p.src.Address)
	_, nport, _ := net.SplitHostPort(addr)
	os.WriteFile(khPath, []byte(replacePort(string(kh), port, nport)), 0o600)
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, p, func(_ *configs.Job, s *configs.Source) {
			s.Address, s.KnownHosts = addr, khPath
			s.Sessions, s.Connections, s.PacketSize = configs.DefaultSessions, configs.DefaultConnections, 0
		})
		b.StartTimer()
		res := e.run()
		if res.Failed() {
			b.Fatalf("%+v", res)
		}
	}
}

func replacePort(s, old, new string) string {
	return strings.ReplaceAll(s, "]:"+old+" ", "]:"+new+" ")
}
