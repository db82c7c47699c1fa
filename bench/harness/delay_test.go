package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// TestDelayLine sends data both ways through the line, paced and unpaced,
// and checks that every byte arrives in order. No timing is asserted.
func TestDelayLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	for _, rate := range []float64{0, 200e6} {
		d, err := startDelayLine(ln.Addr().String(), 4*time.Millisecond, rate)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", d.Addr)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 3<<20)
		rand.Read(want)
		go func() {
			c.Write(want)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("rate %v: got %d bytes, not the %d sent", rate, len(got), len(want))
		}
		c.Close()
		d.Close()
	}
	if _, err := startDelayLine("10.0.0.1:22", time.Millisecond, 0); err == nil {
		t.Fatal("a target off loopback was accepted")
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "1g": 1e9, "100m": 100e6, "500k": 500e3, "1gbit": 1e9, "2.5G": 2.5e9} {
		got, err := parseRate(in)
		if err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseRate("fast"); err == nil {
		t.Error("parseRate(fast) accepted")
	}
}
