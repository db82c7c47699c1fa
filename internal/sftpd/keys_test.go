package sftpd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestWritePrivateKey(t *testing.T) {
	signer, priv, err := GenerateKey()
	must(t, err)
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("key type %s", signer.PublicKey().Type())
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	must(t, os.WriteFile(p, []byte("old"), 0o644)) // mode is tightened
	must(t, WritePrivateKey(p, priv))
	fi, err := os.Stat(p)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	data, err := os.ReadFile(p)
	must(t, err)
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Fatalf("not an OpenSSH private key:\n%s", data)
	}
	back, err := ssh.ParsePrivateKey(data)
	must(t, err)
	if !bytes.Equal(back.PublicKey().Marshal(), signer.PublicKey().Marshal()) {
		t.Fatal("round-tripped key differs")
	}
}

func TestWriteKnownHosts(t *testing.T) {
	a, _, err := GenerateKey()
	must(t, err)
	b, _, err := GenerateKey()
	must(t, err)
	p := filepath.Join(t.TempDir(), "known_hosts")
	lineA := knownhosts.Line([]string{"127.0.0.1:2222"}, a.PublicKey())
	lineB := knownhosts.Line([]string{"127.0.0.1:22"}, b.PublicKey())
	if !strings.HasPrefix(lineA, "[127.0.0.1]:2222 ssh-ed25519 ") || !strings.HasPrefix(lineB, "127.0.0.1 ssh-ed25519 ") {
		t.Fatalf("lines %q %q", lineA, lineB)
	}
	must(t, WriteKnownHosts(p, lineA, lineB+"\n"))
	fi, err := os.Stat(p)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	cb, err := knownhosts.New(p)
	must(t, err)
	addr := fakeAddr("127.0.0.1:2222")
	if err := cb("127.0.0.1:2222", addr, a.PublicKey()); err != nil {
		t.Fatalf("pinned key refused: %v", err)
	}
	if err := cb("127.0.0.1:2222", addr, b.PublicKey()); err == nil {
		t.Fatal("wrong key accepted")
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
