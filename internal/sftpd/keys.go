package sftpd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// GenerateKey returns a fresh ed25519 key as an ssh.Signer (for a client or
// a server) together with the raw private key (for [WritePrivateKey]).
func GenerateKey() (ssh.Signer, ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("sftpd: generate ed25519 key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("sftpd: signer from ed25519 key: %w", err)
	}
	return signer, priv, nil
}

// WritePrivateKey writes priv, unencrypted, as an OpenSSH private key
// ("-----BEGIN OPENSSH PRIVATE KEY-----", as produced by ssh-keygen) to path
// with mode 0600. It can be read back with ssh.ParsePrivateKey and is
// accepted by OpenSSH's ssh and sshd.
func WritePrivateKey(path string, priv ed25519.PrivateKey) error {
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return fmt.Errorf("sftpd: marshal private key: %w", err)
	}
	return writePrivateFile(path, pem.EncodeToMemory(block))
}

// WriteKnownHosts writes lines (for example [Server.KnownHostsLine]) to path,
// one per line, with mode 0600, replacing any previous content.
func WriteKnownHosts(path string, lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimRight(l, "\r\n"))
		b.WriteByte('\n')
	}
	return writePrivateFile(path, []byte(b.String()))
}

// writePrivateFile writes data to path with mode 0600, tightening the mode
// of a pre-existing file as well.
func writePrivateFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("sftpd: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("sftpd: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("sftpd: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sftpd: %w", err)
	}
	return nil
}

// StartWithClient starts a server as [Start] does, with a fresh client key
// authorized besides cfg.AuthorizedKeys (which may then be empty), and
// writes what a pull client needs to connect: that key to keyFile (as
// [WritePrivateKey]) and a known_hosts file pinning the server's host key
// to knownHostsFile (as [WriteKnownHosts]). It returns the server and the
// client key.
func StartWithClient(ctx context.Context, cfg Config, keyFile, knownHostsFile string) (*Server, ssh.Signer, error) {
	client, priv, err := GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	cfg.AuthorizedKeys = append(slices.Clip(cfg.AuthorizedKeys), client.PublicKey())
	srv, err := Start(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := WritePrivateKey(keyFile, priv); err != nil {
		srv.Close()
		return nil, nil, err
	}
	if err := WriteKnownHosts(knownHostsFile, srv.KnownHostsLine()); err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, client, nil
}
