package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// delayLine is a TCP proxy on 127.0.0.1 that stands for a wide area network
// between the clients and sshd: every byte is held for half the round trip
// in each direction, and, with a rate, each direction is paced like a link
// of that bandwidth (a byte leaves no earlier than the bytes before it have
// been serialized at that rate). The queue of each direction is bounded
// (queueLimit): when it is full the proxy stops reading, so TCP's flow
// control reaches the sender as it would at a real bottleneck. The delay is
// kept in user space because the loopback interface has no delay of its
// own and netem needs privileges; timer granularity adds well under a
// millisecond per chunk.
type delayLine struct {
	ln      net.Listener
	target  string
	oneWay  time.Duration // half the round trip
	rate    float64       // bytes per second; 0 means unpaced
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	Addr    string // 127.0.0.1:PORT of the proxy
	Port    int
	stopped chan struct{}
}

// maxQueue bounds the bytes held in one direction of one connection.
const maxQueue = 64 << 20

// queueLimit is what one direction holds: unpaced, maxQueue; paced, the
// bytes on the wire (rate × one-way delay) plus a bottleneck buffer of one
// round trip at the rate, as a router sized by the usual rule would hold.
func (d *delayLine) queueLimit() int {
	if d.rate <= 0 {
		return maxQueue
	}
	return max(int(d.rate*(3*d.oneWay).Seconds()), 1<<20)
}

// startDelayLine listens on a free loopback port and forwards every
// connection to target (which must be on 127.0.0.1) through the delay.
func startDelayLine(target string, rtt time.Duration, rateBitsPerSec float64) (*delayLine, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("delay line: target %q is not on 127.0.0.1", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &delayLine{ln: ln, target: target, oneWay: rtt / 2, rate: rateBitsPerSec / 8,
		conns: map[net.Conn]struct{}{}, stopped: make(chan struct{})}
	d.Addr = ln.Addr().String()
	d.Port = ln.Addr().(*net.TCPAddr).Port
	d.wg.Add(1)
	go d.accept()
	return d, nil
}

func (d *delayLine) accept() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", d.target)
		if err != nil {
			c.Close()
			continue
		}
		if !d.track(c, s) {
			c.Close()
			s.Close()
			return
		}
		d.wg.Add(2)
		go d.pipe(s, c)
		go d.pipe(c, s)
	}
}

func (d *delayLine) track(cs ...net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	for _, c := range cs {
		d.conns[c] = struct{}{}
	}
	return true
}

// segment is one read from the sender, due at the receiver at due.
type segment struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst through the delay (and pacing) of one direction.
func (d *delayLine) pipe(dst, src net.Conn) {
	defer d.wg.Done()
	q := make(chan segment, 1<<16)
	var (
		mu     sync.Mutex
		cond   = sync.NewCond(&mu)
		queued int
	)
	done := make(chan struct{})
	go func() { // the receiving end: deliver each segment when it is due
		defer close(done)
		broken := false
		for s := range q {
			if !broken {
				if w := time.Until(s.due); w > 0 {
					time.Sleep(w)
				}
				if _, err := dst.Write(s.b); err != nil {
					broken = true
					src.Close()
				}
			}
			mu.Lock()
			queued -= len(s.b)
			cond.Signal()
			mu.Unlock()
		}
		if tc, ok := dst.(*net.TCPConn); ok && !broken {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	var lastOut time.Time // when the previous byte finished serializing (pacing)
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			depart := now
			if d.rate > 0 {
				if lastOut.After(depart) {
					depart = lastOut
				}
				depart = depart.Add(time.Duration(float64(n) / d.rate * float64(time.Second)))
				lastOut = depart
			}
			mu.Lock()
			for queued+n > d.queueLimit() && queued > 0 {
				cond.Wait()
			}
			queued += n
			mu.Unlock()
			q <- segment{b: buf[:n], due: depart.Add(d.oneWay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

// Close stops accepting, cuts every connection and waits for the copiers.
func (d *delayLine) Close() error {
	d.mu.Lock()
	d.closed = true
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	err := d.ln.Close()
	d.wg.Wait()
	return err
}

// parseRate reads a link rate in bits per second: "1g", "100m", "500k",
// "1gbit", or a plain number; "" or "0" means unpaced.
func parseRate(s string) (float64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "0" {
		return 0, nil
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "bit"), "bps")
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "g"):
		mult, s = 1e9, strings.TrimSuffix(s, "g")
	case strings.HasSuffix(s, "m"):
		mult, s = 1e6, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, errors.New("--rate: use a bit rate such as 1g, 100m or 500k")
	}
	return v * mult, nil
}

// fmtRate shows a bit rate the way --rate takes it.
func fmtRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return strconv.FormatFloat(bps/1e9, 'g', 4, 64) + " Gbit/s"
	case bps >= 1e6:
		return strconv.FormatFloat(bps/1e6, 'g', 4, 64) + " Mbit/s"
	}
	return strconv.FormatFloat(bps/1e3, 'g', 4, 64) + " kbit/s"
}

var _ io.Closer = (*delayLine)(nil)
