package transfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"

	"custodian/configs"
)

// Remote is an open SSH connection to one source with one or more SFTP
// sessions on it. Every network read and write carries the source's IO
// timeout, so a stalled server fails the transfer instead of hanging it.
type Remote struct {
	conn     *ssh.Client
	raw      net.Conn
	sessions []*sftp.Client
	next     chan *sftp.Client
	once     sync.Once
}

// maxRequests bounds the outstanding read requests per file (memory:
// maxRequests × packet_size per file in flight).
const maxRequests = 32

// Dial connects to src, checks its host key against src.KnownHosts, and opens
// src.Sessions SFTP sessions.
func Dial(ctx context.Context, name string, src *configs.Source) (*Remote, error) {
	signer, err := loadClientKey(src)
	if err != nil {
		return nil, err
	}
	hkdb, err := knownhosts.NewDB(src.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sources.%s.known_hosts: %w", name, err)
	}
	addr := src.Address
	cb := hkdb.HostKeyCallback()
	var presented ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: src.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			presented = key
			return cb(hostname, remote, key)
		},
		// Offer only the key algorithms we hold for this host, so the server
		// presents the key that is pinned rather than another one.
		HostKeyAlgorithms: hkdb.HostKeyAlgorithms(addr),
		Timeout:           src.ConnectTimeout.Duration,
	}
	cfg.Ciphers = preferredCiphers

	d := net.Dialer{Timeout: src.ConnectTimeout.Duration}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConnect, addr, err)
	}
	tc := &timeoutConn{Conn: raw}
	tc.timeout.Store(int64(src.ConnectTimeout.Duration))
	c, chans, reqs, err := ssh.NewClientConn(tc, addr, cfg)
	if err != nil {
		raw.Close()
		return nil, classifyHandshake(addr, presented, err)
	}
	tc.timeout.Store(int64(src.IOTimeout.Duration))
	r := &Remote{conn: ssh.NewClient(c, chans, reqs), raw: raw}
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	n := max(src.Sessions, 1)
	r.next = make(chan *sftp.Client, n)
	for i := 0; i < n; i++ {
		s, err := sftp.NewClient(r.conn,
			sftp.UseConcurrentReads(true),
			sftp.MaxPacketUnchecked(src.PacketSize),
			sftp.MaxConcurrentRequestsPerFile(maxRequests),
		)
		if err != nil {
			r.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: opening SFTP session on %s: %v", ErrConnect, addr, err)
		}
		r.sessions = append(r.sessions, s)
		r.next <- s
	}
	return r, nil
}

// preferredCiphers puts the ciphers with hardware support first; all are AEAD
// or encrypt-then-MAC. x/crypto/ssh refuses anything weaker by default.
var preferredCiphers = []string{
	"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
	"chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr",
}

func classifyHandshake(addr string, presented ssh.PublicKey, err error) error {
	fp := ""
	if presented != nil {
		fp = presented.Type() + " " + ssh.FingerprintSHA256(presented)
	}
	switch {
	case knownhosts.IsHostKeyChanged(err):
		return &HostKeyError{Addr: addr, Fingerprint: fp, Err: ErrHostKeyChanged}
	case knownhosts.IsHostUnknown(err):
		return &HostKeyError{Addr: addr, Fingerprint: fp, Err: ErrHostKeyUnknown}
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%w: %s refused our key: %v", ErrAuth, addr, err)
	}
	return fmt.Errorf("%w: SSH handshake with %s: %v", ErrConnect, addr, err)
}

// HostKeyError says the server's key is not the one pinned in known_hosts.
type HostKeyError struct {
	Addr        string
	Fingerprint string // of the key the server presented
	Err         error  // ErrHostKeyUnknown or ErrHostKeyChanged
}

func (e *HostKeyError) Error() string {
	if errors.Is(e.Err, ErrHostKeyChanged) {
		return fmt.Sprintf("host key for %s has CHANGED: the server presented %s, which is not the key in known_hosts; do not proceed until the provider confirms the new key out of band", e.Addr, e.Fingerprint)
	}
	return fmt.Sprintf("host key for %s is not in known_hosts (server presented %s); add the provider's key, confirmed out of band, to known_hosts", e.Addr, e.Fingerprint)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

func loadClientKey(src *configs.Source) (ssh.Signer, error) {
	pem, err := os.ReadFile(src.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("reading key_file: %w", err)
	}
	if src.KeyPassphraseFile != "" {
		pass, err := os.ReadFile(src.KeyPassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("reading key_passphrase_file: %w", err)
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(pem, []byte(strings.TrimRight(string(pass), "\r\n")))
		if err != nil {
			return nil, fmt.Errorf("key_file %s: cannot decrypt with key_passphrase_file: %w", src.KeyFile, err)
		}
		return s, nil
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("key_file %s is encrypted: set key_passphrase_file", src.KeyFile)
		}
		return nil, fmt.Errorf("key_file %s: %w", src.KeyFile, err)
	}
	return s, nil
}

// session borrows an SFTP session; give it back with release.
func (r *Remote) session(ctx context.Context) (*sftp.Client, error) {
	select {
	case s := <-r.next:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Remote) release(s *sftp.Client) { r.next <- s }

// Close closes every session and the connection. Safe to call twice.
func (r *Remote) Close() error {
	var err error
	r.once.Do(func() {
		for _, s := range r.sessions {
			s.Close()
		}
		if r.conn != nil {
			err = r.conn.Close()
		}
		r.raw.Close()
	})
	return err
}

// timeoutConn puts a deadline on every read and write, so that a server that
// stops answering fails the transfer after the IO timeout. A connection is
// only kept open while a job runs, so idle time does not trip it.
type timeoutConn struct {
	net.Conn
	timeout atomic.Int64 // nanoseconds; the connect timeout during the handshake, then the IO timeout
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	if t := time.Duration(c.timeout.Load()); t > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(t))
	}
	return c.Conn.Read(p)
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	if t := time.Duration(c.timeout.Load()); t > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(t))
	}
	return c.Conn.Write(p)
}
