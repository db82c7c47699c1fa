// Package sftpdtest starts the in-process SFTP server of
// custodian/internal/sftpd for a test, with everything a pull client needs:
// a client key file, a known_hosts file pinning the server's host key, and
// the matching [configs.Source].
package sftpdtest

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"

	"custodian/configs"
	"custodian/internal/sftpd"
)

// User is the default user name the server accepts.
const User = "hbxfer"

// Options configure [Start]. Every field is optional.
type Options struct {
	// Root is the directory served as "/"; default a new t.TempDir().
	Root string
	// Dirs are created (0755, with parents) under Root, e.g. "outbox".
	Dirs []string
	// Etc is the directory of the key and known_hosts files; default a
	// new t.TempDir(). (Tests whose configuration puts a Unix socket
	// under it pass a short directory.)
	Etc string
	// KeyFile and KnownHostsFile name the files in Etc; default "id" and
	// "known_hosts".
	KeyFile, KnownHostsFile string
	// User is the accepted user name; default [User].
	User string
	// HostKey is the server's host key; default a fresh ed25519 key.
	HostKey ssh.Signer
	// Hooks inject faults.
	Hooks *sftpd.Hooks
}

// Server is a running server and its client's files.
type Server struct {
	*sftpd.Server
	Root           string // the directory served as "/"
	Etc            string
	User           string
	KeyFile        string // absolute path of the client's private key
	KnownHostsFile string // absolute path of the known_hosts file
	ClientKey      ssh.Signer
}

// Start starts a server, failing the test if it cannot; it is closed when
// the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{Root: opts.Root, Etc: opts.Etc, User: opts.User}
	if s.Root == "" {
		s.Root = t.TempDir()
	}
	if s.Etc == "" {
		s.Etc = t.TempDir()
	}
	if s.User == "" {
		s.User = User
	}
	for _, d := range opts.Dirs {
		if err := os.MkdirAll(filepath.Join(s.Root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.KeyFile = filepath.Join(s.Etc, cmp.Or(opts.KeyFile, "id"))
	s.KnownHostsFile = filepath.Join(s.Etc, cmp.Or(opts.KnownHostsFile, "known_hosts"))
	srv, client, err := sftpd.StartWithClient(context.Background(),
		sftpd.Config{Root: s.Root, HostKey: opts.HostKey, User: s.User, Hooks: opts.Hooks}, s.KeyFile, s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s.Server, s.ClientKey = srv, client
	return s
}

// Source returns the configuration of a source pulling from the server.
func (s *Server) Source() *configs.Source {
	return &configs.Source{Address: s.Addr(), User: s.User, KeyFile: s.KeyFile, KnownHosts: s.KnownHostsFile}
}
