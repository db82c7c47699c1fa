package sftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultAddr is the listen address used when [Config.Addr] is empty.
const DefaultAddr = "127.0.0.1:0"

// handshakeTimeout bounds the SSH handshake and authentication of one
// connection, so that a silent peer cannot hold a goroutine forever.
const handshakeTimeout = 10 * time.Second

// Config configures a [Server].
type Config struct {
	// Root is the directory served as "/". Required; it must exist.
	Root string
	// Addr is the TCP address to listen on; default [DefaultAddr].
	Addr string
	// HostKey is the server's host key; if nil a fresh ed25519 key is
	// generated.
	HostKey ssh.Signer
	// AuthorizedKeys are the only client keys accepted (public-key
	// authentication only; password and keyboard-interactive authentication
	// are refused). Required.
	AuthorizedKeys []ssh.PublicKey
	// User is the only accepted user name. Required.
	User string
	// Hooks inject faults; may be nil.
	Hooks *Hooks
	// Logf, if set, receives one line per connection event and per
	// mutating or opening SFTP operation.
	Logf func(format string, args ...any)
}

// Hooks inject faults. Every field is optional. Paths are slash paths
// relative to [Config.Root] with a leading "/" (the root itself is "/").
// Hooks are called concurrently, from the goroutines serving requests, and
// must be safe for that.
type Hooks struct {
	// ReadAt is called after every read of a file opened for reading, with
	// the bytes read into p[:n] and the error of the underlying ReadAt. Its
	// results replace n and err: it may modify p (corrupt), return an error
	// (simulate an I/O failure), return fewer bytes and io.EOF (truncate),
	// or sleep before returning (stall). A returned n is clamped to
	// [0, len(p)].
	ReadAt func(path string, p []byte, off int64, n int, err error) (int, error)

	// Stat is applied to every file-info the server returns: stat, lstat,
	// fstat (which pkg/sftp's client uses to size concurrent reads) and each
	// readdir entry. It returns the info to send, e.g. one made with
	// [OverrideInfo] to lie about size or mtime.
	Stat func(path string, fi os.FileInfo) os.FileInfo

	// DropAfterBytes is called once each time a file is opened for reading
	// and returns a byte budget for that open handle; <= 0 means no limit.
	// Bytes are counted as they are returned by reads on the handle
	// (after the ReadAt hook). The read that brings the count to the budget
	// or beyond is not answered: instead the connection's TCP socket is
	// closed abruptly (SO_LINGER=0), as by [Server.DropAll]. Being a
	// function, it lets a test drop only the first attempt; see [DropAfter]
	// and [DropAfterOnce] for map-based helpers.
	DropAfterBytes func(path string) int64
}

// DropAfter returns a [Hooks.DropAfterBytes] function that drops the
// connection every time one of the files in m has been served m[path] bytes
// through a single open handle.
func DropAfter(m map[string]int64) func(path string) int64 {
	return func(path string) int64 { return m[path] }
}

// DropAfterOnce is like [DropAfter], but each path causes a drop on its first
// open only; later opens (for example a client's retry) are not limited.
func DropAfterOnce(m map[string]int64) func(path string) int64 {
	var mu sync.Mutex
	used := make(map[string]bool)
	return func(path string) int64 {
		mu.Lock()
		defer mu.Unlock()
		if used[path] {
			return 0
		}
		used[path] = true
		return m[path]
	}
}

// Stats are cumulative counters of a [Server], from [Server.Stats].
type Stats struct {
	ConnsAccepted     int64 // TCP connections accepted
	ConnsActive       int64 // authenticated SSH connections currently open
	HandshakeFailures int64 // connections that failed the SSH handshake or authentication
	AuthRejected      int64 // public keys or user names rejected (a client may offer several)
	Sessions          int64 // SFTP subsystem sessions started
	FilesOpened       int64 // files opened for reading
	BytesServed       int64 // file bytes returned by reads
	Drops             int64 // connections aborted by DropAll or DropAfterBytes
}

// Server is a running SFTP server; see the package documentation.
type Server struct {
	cfg     Config
	logf    func(string, ...any)
	root    *os.Root
	ln      net.Listener
	sshCfg  *ssh.ServerConfig
	hostKey ssh.Signer

	mu      sync.Mutex
	stopCtx func() bool // unregisters the context watcher
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	nextConnID        atomic.Int64
	connsAccepted     atomic.Int64
	connsActive       atomic.Int64
	handshakeFailures atomic.Int64
	authRejected      atomic.Int64
	sessions          atomic.Int64
	filesOpened       atomic.Int64
	bytesServed       atomic.Int64
	drops             atomic.Int64
}

// Start validates cfg, listens on cfg.Addr and serves in background
// goroutines until [Server.Close] is called or ctx is cancelled.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, errors.New("sftpd: Config.Root is required")
	}
	if cfg.User == "" {
		return nil, errors.New("sftpd: Config.User is required")
	}
	if len(cfg.AuthorizedKeys) == 0 {
		return nil, errors.New("sftpd: Config.AuthorizedKeys is empty: no client could log in")
	}
	rootDir, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("sftpd: root: %w", err)
	}
	if fi, err := os.Stat(rootDir); err != nil {
		return nil, fmt.Errorf("sftpd: root: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("sftpd: root %s is not a directory", rootDir)
	}
	cfg.Root = rootDir
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	hostKey := cfg.HostKey
	if hostKey == nil {
		if hostKey, _, err = GenerateKey(); err != nil {
			return nil, err
		}
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}

	s := &Server{
		cfg:     cfg,
		logf:    logf,
		hostKey: hostKey,
		conns:   make(map[net.Conn]struct{}),
	}

	authorized := make(map[string]bool, len(cfg.AuthorizedKeys))
	for _, k := range cfg.AuthorizedKeys {
		authorized[string(k.Marshal())] = true
	}
	s.sshCfg = &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() != cfg.User || !authorized[string(key.Marshal())] {
				s.authRejected.Add(1)
				return nil, fmt.Errorf("sftpd: public key %s rejected for user %q", ssh.FingerprintSHA256(key), c.User())
			}
			return &ssh.Permissions{Extensions: map[string]string{
				"pubkey-fp": ssh.FingerprintSHA256(key),
			}}, nil
		},
		ServerVersion: "SSH-2.0-custodian_sftpd",
	}
	s.sshCfg.AddHostKey(hostKey)

	if s.root, err = os.OpenRoot(rootDir); err != nil {
		return nil, fmt.Errorf("sftpd: %w", err)
	}
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", cfg.Addr); err != nil {
		s.root.Close()
		return nil, fmt.Errorf("sftpd: listen: %w", err)
	}
	s.logf("sftpd: serving %s on %s for user %q", rootDir, s.ln.Addr(), cfg.User)

	s.wg.Add(1)
	go s.acceptLoop()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	s.mu.Lock()
	s.stopCtx = stop
	s.mu.Unlock()
	return s, nil
}

// Addr returns the address the server listens on, e.g. "127.0.0.1:40123".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HostKey returns the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// KnownHostsLine returns the known_hosts line that pins the host key for
// [Server.Addr], e.g. "[127.0.0.1]:40123 ssh-ed25519 AAAA...". The
// bracketed host:port form is used because the port is not 22.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{s.Addr()}, s.HostKey())
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		ConnsAccepted:     s.connsAccepted.Load(),
		ConnsActive:       s.connsActive.Load(),
		HandshakeFailures: s.handshakeFailures.Load(),
		AuthRejected:      s.authRejected.Load(),
		Sessions:          s.sessions.Load(),
		FilesOpened:       s.filesOpened.Load(),
		BytesServed:       s.bytesServed.Load(),
		Drops:             s.drops.Load(),
	}
}

// Close stops accepting connections, aborts all live connections and waits
// for every goroutine the server started to return. It is safe to call more
// than once and concurrently; every call returns after shutdown completed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		if s.stopCtx != nil { // nil when ctx was already done during Start
			s.stopCtx()
		}
		s.closed = true
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()

		err := s.ln.Close()
		for _, c := range conns {
			abort(c)
		}
		s.wg.Wait()
		if rerr := s.root.Close(); err == nil {
			err = rerr
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = fmt.Errorf("sftpd: close: %w", err)
		}
		s.logf("sftpd: closed %s", s.ln.Addr())
	})
	return s.closeErr
}

// DropAll abruptly closes every live connection (fault injection). The
// server keeps accepting new connections.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		s.drops.Add(1)
		abort(c)
	}
	s.logf("sftpd: dropped %d connection(s)", len(conns))
}

// abort closes c without a graceful TCP shutdown, so the peer sees a reset.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			// E.g. EMFILE: back off briefly instead of spinning.
			s.logf("sftpd: accept: %v", err)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !s.track(c) {
			abort(c)
			return
		}
		s.connsAccepted.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(c)
		}()
	}
}

// conn is the per-connection state shared by the SFTP handlers.
type conn struct {
	srv     *Server
	id      int64
	netConn net.Conn
	dropped atomic.Bool
}

// drop aborts the connection (fault injection from DropAfterBytes).
func (c *conn) drop(reason string) {
	if c.dropped.CompareAndSwap(false, true) {
		c.srv.drops.Add(1)
		c.srv.logf("sftpd: conn %d: dropping connection: %s", c.id, reason)
		abort(c.netConn)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	id := s.nextConnID.Add(1)
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(nc, s.sshCfg)
	if err != nil {
		s.handshakeFailures.Add(1)
		s.logf("sftpd: conn %d from %s: handshake failed: %v", id, nc.RemoteAddr(), err)
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.connsActive.Add(1)
	defer s.connsActive.Add(-1)
	s.logf("sftpd: conn %d from %s: user %q authenticated (%s, key %s)", id, nc.RemoteAddr(),
		sconn.User(), sconn.ClientVersion(), sconn.Permissions.Extensions["pubkey-fp"])

	c := &conn{srv: s, id: id, netConn: nc}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for newCh := range chans {
		if newCh.ChannelType() != "session" {
			_ = newCh.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, chReqs, err := newCh.Accept()
		if err != nil {
			s.logf("sftpd: conn %d: accept channel: %v", id, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveSession(c, ch, chReqs)
		}()
	}
	_ = sconn.Close()
	wg.Wait()
	s.logf("sftpd: conn %d closed", id)
}

// serveSession answers the requests of one session channel: the "sftp"
// subsystem is served, everything else (shell, exec, pty, env, ...) is
// refused.
func (s *Server) serveSession(c *conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	var wg sync.WaitGroup
	started := false
	for req := range reqs {
		var sub struct{ Name string }
		if req.Type == "subsystem" && !started && ssh.Unmarshal(req.Payload, &sub) == nil && sub.Name == "sftp" {
			started = true
			_ = req.Reply(true, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveSFTP(c, ch)
			}()
			continue
		}
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
	wg.Wait()
	_ = ch.Close()
}

func (s *Server) serveSFTP(c *conn, ch ssh.Channel) {
	s.sessions.Add(1)
	h := &handler{conn: c, srv: s, root: s.root, hooks: s.cfg.Hooks}
	rs := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	err := rs.Serve()
	if err != nil && !errors.Is(err, io.EOF) && !c.dropped.Load() && !s.isClosed() {
		s.logf("sftpd: conn %d: sftp session ended: %v", c.id, err)
	}
	_ = rs.Close()
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
	_ = ch.Close()
}
