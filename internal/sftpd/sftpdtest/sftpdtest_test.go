package sftpdtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestStart: a client using only the Source's files reads the served tree.
func TestStart(t *testing.T) {
	s := Start(t, Options{Dirs: []string{"outbox/changes"}, KnownHostsFile: "kh"})
	if err := os.WriteFile(filepath.Join(s.Root, "outbox", "HR_1.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := s.Source()
	if src.KnownHosts != filepath.Join(s.Etc, "kh") || src.KeyFile != filepath.Join(s.Etc, "id") || src.User != User {
		t.Fatalf("source %+v", src)
	}
	pem, err := os.ReadFile(src.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(src.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", src.Address, &ssh.ClientConfig{User: src.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: hk})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	entries, err := c.ReadDir("/outbox")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name() != "HR_1.txt" || !entries[1].IsDir() {
		t.Fatalf("listing %v", entries)
	}
}
