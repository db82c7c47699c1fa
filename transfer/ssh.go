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
	"golang.org/x/sync/semaphore"

	"custodian/configs"
)

// Remote is one source's open SSH connections with the SFTP sessions on
// them. Every network read and write carries the source's IO timeout, so a
// stalled server fails the transfer instead of hanging it.
//
// pkg/sftp clients take concurrent requests, so sessions are shared: many
// files are in flight on each, and a large file is read over several of
// them at once (multiread.go). Each session is an SSH channel with its own
// flow-control window, which is what bounds the bytes in flight per channel.
type Remote struct {
	conns    []*ssh.Client
	raws     []net.Conn
	sessions []*sftp.Client
	// sessionConn is the connection of each session, as opened.
	sessionConn []*ssh.Client
	rr          atomic.Uint64
	once        sync.Once
	// perConn is the session limit the server enforced (0: none seen).
	perConn int
	// notes are what Dial found worth telling (a session limit).
	notes []string
	// mem bounds the file bytes held in memory at once (ranged reads'
	// windows and small files read whole); see multiread.go.
	mem *semaphore.Weighted
	// packetSize is the SFTP read size in use.
	packetSize int
}

// maxRequests bounds the outstanding read requests per ReadAt call
// (pkg/sftp's MaxConcurrentRequestsPerFile).
const maxRequests = 32

// maxConnections bounds the SSH connections opened when the server limits
// the sessions per connection.
const maxConnections = 16

// Dial connects to src, checks its host key against src.KnownHosts, and
// opens src.Sessions SFTP sessions spread over src.Connections SSH
// connections. A server that refuses a session beyond its own limit
// (OpenSSH MaxSessions) is not an error: the limit is noted, and further
// connections carry the remaining sessions, each within the limit.
func Dial(ctx context.Context, name string, src *configs.Source) (*Remote, error) {
	signer, err := loadClientKey(src)
	if err != nil {
		return nil, err
	}
	hkdb, err := knownhosts.NewDB(src.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sources.%s.known_hosts: %w", name, err)
	}
	r := &Remote{mem: semaphore.NewWeighted(memBudget)}
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	fail := func(err error) (*Remote, error) {
		r.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	want := max(src.Sessions, 1)
	conns := min(max(src.Connections, 1), want)
	perConn := (want + conns - 1) / conns
	// Connections are dialled, and the sessions on each opened, all at
	// once: over a long path each costs round trips, and those overlap.
	for round := 0; len(r.sessions) < want; round++ {
		per := perConn
		if r.perConn > 0 {
			per = min(per, r.perConn)
		}
		k := min((want-len(r.sessions)+per-1)/per, maxConnections-len(r.conns))
		if k <= 0 {
			r.notes = append(r.notes, fmt.Sprintf("source %s: using %d SFTP sessions over %d connections instead of %d sessions (the server allows %d per connection)",
				name, len(r.sessions), len(r.conns), want, r.perConn))
			break
		}
		type dialled struct {
			c        *ssh.Client
			raw      net.Conn
			version  string
			err      error
			sessions []*sftp.Client
			refused  bool  // the server refused a session (its limit)
			serr     error // another session failure
		}
		res := make([]dialled, k)
		remaining := want - len(r.sessions)
		var wg sync.WaitGroup
		for i := range res {
			quota := min(per, remaining)
			remaining -= quota
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := &res[i]
				d.c, d.raw, d.version, d.err = dialConn(ctx, src, hkdb, signer)
				if d.err != nil {
					return
				}
				ps := packetSize(src, d.version)
				got := make([]*sftp.Client, quota)
				errs := make([]error, quota)
				var sw sync.WaitGroup
				for j := range got {
					sw.Add(1)
					go func() {
						defer sw.Done()
						got[j], errs[j] = newSession(d.c, ps)
					}()
				}
				sw.Wait()
				for j := range got {
					switch {
					case errs[j] == nil:
						d.sessions = append(d.sessions, got[j])
					case refused(errs[j]):
						d.refused = true
					case d.serr == nil:
						d.serr = errs[j]
					}
				}
			}()
		}
		wg.Wait()
		var firstErr error
		for _, d := range res {
			if d.err != nil {
				if firstErr == nil {
					firstErr = d.err
				}
				continue
			}
			r.conns = append(r.conns, d.c)
			r.raws = append(r.raws, d.raw)
			if r.packetSize == 0 {
				r.packetSize = packetSize(src, d.version)
			}
			for _, s := range d.sessions {
				r.sessions = append(r.sessions, s)
				r.sessionConn = append(r.sessionConn, d.c)
			}
			switch {
			case d.serr != nil && firstErr == nil:
				firstErr = fmt.Errorf("%w: opening SFTP session on %s: %v", ErrConnect, src.Address, d.serr)
			case d.refused && len(d.sessions) == 0 && firstErr == nil:
				firstErr = fmt.Errorf("%w: %s accepts the connection but refuses every SFTP session on it; check the server's MaxSessions", ErrNoSessions, src.Address)
			case d.refused && (r.perConn == 0 || len(d.sessions) < r.perConn):
				// The server's session limit (OpenSSH MaxSessions).
				r.perConn = len(d.sessions)
			}
		}
		if firstErr != nil {
			if len(r.sessions) == 0 || errors.As(firstErr, new(*HostKeyError)) || errors.Is(firstErr, ErrAuth) || errors.Is(firstErr, ErrNoSessions) {
				return fail(firstErr)
			}
			// A server that limits connections too: carry on with the
			// sessions open, and say so.
			r.notes = append(r.notes, fmt.Sprintf("source %s: using %d of %d SFTP sessions; a further connection failed: %v", name, len(r.sessions), want, firstErr))
			break
		}
		if r.perConn > 0 && round == 0 {
			r.notes = append(r.notes, fmt.Sprintf("source %s: the server allows %d SFTP sessions per connection (OpenSSH MaxSessions); opening more connections for the %d sessions configured", name, r.perConn, want))
		}
		if r.perConn == 0 && len(r.sessions) < want {
			break // cannot happen: every quota was met
		}
	}
	r.interleave()
	r.register()
	return r, nil
}

// interleave orders the sessions so that neighbours are on different
// connections: the streams of one file, taken in order, spread over them.
func (r *Remote) interleave() {
	byConn := map[*ssh.Client][]*sftp.Client{}
	for i, s := range r.sessions {
		c := r.sessionConn[i]
		byConn[c] = append(byConn[c], s)
	}
	out := make([]*sftp.Client, 0, len(r.sessions))
	for k := 0; len(out) < len(r.sessions); k++ {
		for _, c := range r.conns {
			if k < len(byConn[c]) {
				out = append(out, byConn[c][k])
			}
		}
	}
	r.sessions = out
}

// refused reports a channel the server would not open: with OpenSSH, a
// session beyond MaxSessions ("open failed").
func refused(err error) bool {
	var oc *ssh.OpenChannelError
	return errors.As(err, &oc)
}

// dialConn opens and authenticates one SSH connection.
func dialConn(ctx context.Context, src *configs.Source, hkdb *knownhosts.HostKeyDB, signer ssh.Signer) (*ssh.Client, net.Conn, string, error) {
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
		return nil, nil, "", fmt.Errorf("%w: %s: %v", ErrConnect, addr, err)
	}
	tc := &timeoutConn{Conn: raw}
	tc.timeout.Store(int64(src.ConnectTimeout.Duration))
	c, chans, reqs, err := ssh.NewClientConn(tc, addr, cfg)
	if err != nil {
		raw.Close()
		return nil, nil, "", classifyHandshake(addr, presented, err)
	}
	tc.timeout.Store(int64(src.IOTimeout.Duration))
	return ssh.NewClient(c, chans, reqs), raw, string(c.ServerVersion()), nil
}

// packetSize is the SFTP read size: packet_size if set, else the largest
// the server is known to serve in one reply (OpenSSH: 261120), else the
// 32768 every server must accept.
func packetSize(src *configs.Source, serverVersion string) int {
	if src.PacketSize > 0 {
		return src.PacketSize
	}
	if strings.HasPrefix(serverVersion, "SSH-2.0-OpenSSH_") {
		return configs.MaxPacketSize
	}
	return 32768
}

func newSession(c *ssh.Client, packetSize int) (*sftp.Client, error) {
	return sftp.NewClient(c,
		sftp.UseConcurrentReads(true),
		sftp.MaxPacketUnchecked(packetSize),
		sftp.MaxConcurrentRequestsPerFile(maxRequests),
	)
}

// Notes are what Dial found worth telling, such as a session limit.
func (r *Remote) Notes() []string { return r.notes }

// Sessions is the number of SFTP sessions open.
func (r *Remote) Sessions() int { return len(r.sessions) }

// Connections is the number of SSH connections open.
func (r *Remote) Connections() int { return len(r.conns) }

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

// session picks an SFTP session for one file, round robin. Sessions are
// shared (pkg/sftp clients take concurrent requests); release is a no-op
// kept for the callers' symmetry.
func (r *Remote) session(ctx context.Context) (*sftp.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.sessions[int(r.rr.Add(1)-1)%len(r.sessions)], nil
}

func (r *Remote) release(*sftp.Client) {}

// streams picks n sessions for one file's ranged read, starting after the
// one the file's worker holds, so concurrent files spread over the
// connections.
func (r *Remote) streams(first *sftp.Client, n int) []*sftp.Client {
	n = min(n, len(r.sessions))
	start := 0
	for i, s := range r.sessions {
		if s == first {
			start = i
		}
	}
	out := make([]*sftp.Client, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, r.sessions[(start+i)%len(r.sessions)])
	}
	return out
}

// Close closes every session and connection. Safe to call twice.
func (r *Remote) Close() error {
	var err error
	r.once.Do(func() {
		r.unregister()
		for _, s := range r.sessions {
			s.Close()
		}
		for _, c := range r.conns {
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
		for _, raw := range r.raws {
			raw.Close()
		}
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
