// Package notifytest runs real receivers for notification tests, on
// 127.0.0.1 only: an SMTP server (emersion/go-smtp) that offers STARTTLS with
// a freshly generated certificate and AUTH PLAIN only after it, and an HTTPS
// webhook receiver that checks each request's HMAC signature. Nothing here
// is a mock: the notifier talks SMTP and HTTPS to them over TCP.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"custodian/notify"
)

// Mail is one message the SMTP server accepted.
type Mail struct {
	From, To string
	// TLS reports whether the message came over a STARTTLS session;
	// User is the authenticated user ("" if none).
	TLS  bool
	User string
	// Header and Body are the parsed message (Body decoded from
	// quoted-printable).
	Header mail.Header
	Body   string
}

// SMTP is an in-process SMTP server.
type SMTP struct {
	Addr string
	// CAFile is a PEM file with the server's certificate, for ca_file.
	CAFile         string
	User, Password string
	// NoStartTLS makes the server not offer STARTTLS (set before Start).
	NoStartTLS bool

	tlsCfg *tls.Config
	mu     sync.Mutex
	srv    *smtp.Server
	mails  []Mail
	got    chan struct{}
}

// NewSMTP prepares a server on a free loopback port with a generated
// certificate for 127.0.0.1, without starting it (so a test can have mail
// fail first). Start and Stop may be called repeatedly.
func NewSMTP(t testing.TB) *SMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	certPEM, cert := selfSigned(t)
	ca := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &SMTP{Addr: addr, CAFile: ca, User: "custodian", Password: "smtp test password",
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{cert}}, got: make(chan struct{}, 100)}
	t.Cleanup(s.Stop)
	return s
}

// Start listens on Addr.
func (s *SMTP) Start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "127.0.0.1"
	if !s.NoStartTLS {
		srv.TLSConfig = s.tlsCfg
	}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nopLogger{}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Stop closes the server; mail to Addr then fails.
func (s *SMTP) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Mails returns the messages accepted so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

type session struct {
	s        *SMTP
	c        *smtp.Conn
	from, to string
	user     string
}

func (x *session) AuthMechanisms() []string {
	if _, ok := x.c.TLSConnectionState(); !ok {
		return nil // AUTH only inside TLS
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != x.s.User || pass != x.s.Password {
			return errors.New("invalid credentials")
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error   { x.to = to; return nil }
func (x *session) Reset()                                      {}
func (x *session) Logout() error                               { return nil }

func (x *session) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	var body []byte
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(msg.Body))
	} else {
		body, err = io.ReadAll(msg.Body)
	}
	if err != nil {
		return err
	}
	_, tlsOn := x.c.TLSConnectionState()
	x.s.mu.Lock()
	x.s.mails = append(x.s.mails, Mail{From: x.from, To: x.to, TLS: tlsOn, User: x.user, Header: msg.Header,
		Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	x.s.mu.Unlock()
	return nil
}

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) ([]byte, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "custodian test SMTP"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, cert
}

// Request is one webhook request the receiver accepted (its signature
// matched).
type Request struct {
	Payload notify.Payload
	Signed  time.Time
}

// Webhook is an HTTPS receiver that checks signatures with Secret.
type Webhook struct {
	URL, CAFile, SecretFile string
	Secret                  []byte

	mu       sync.Mutex
	requests []Request
	bad      []string // requests refused, and why
	// Fail makes the receiver answer 503 while set.
	fail bool
}

// NewWebhook starts an HTTPS receiver on 127.0.0.1 with a secret in a
// 0600 file.
func NewWebhook(t testing.TB) *Webhook {
	t.Helper()
	w := &Webhook{Secret: []byte("a webhook secret of 32 bytes....")}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(w.serve))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	w.URL = srv.URL + "/hooks/custodian"
	w.CAFile = filepath.Join(dir, "webhook-ca.pem")
	w.SecretFile = filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(w.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.SecretFile, append(append([]byte(nil), w.Secret...), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// SetFailing makes the receiver answer 503 (true) or accept again.
func (w *Webhook) SetFailing(fail bool) {
	w.mu.Lock()
	w.fail = fail
	w.mu.Unlock()
}

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		http.Error(rw, "down for the test", http.StatusServiceUnavailable)
		return
	}
	refuse := func(why string) {
		w.bad = append(w.bad, why)
		http.Error(rw, why, http.StatusUnauthorized)
	}
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		refuse("not a JSON POST")
		return
	}
	signed, err := checkSignature(w.Secret, r.Header.Get("Custodian-Signature"), body)
	if err != nil {
		refuse(err.Error())
		return
	}
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		refuse("body: " + err.Error())
		return
	}
	w.requests = append(w.requests, Request{Payload: p, Signed: signed})
	rw.WriteHeader(http.StatusNoContent)
}

// checkSignature is the receiver's check, written from the documented
// format alone ("t=UNIX,v1=HEX", HMAC-SHA256 over "UNIX.BODY"), not with
// package notify's code, so that the two must agree.
func checkSignature(secret []byte, header string, body []byte) (time.Time, error) {
	ts, sig, ok := strings.Cut(header, ",v1=")
	ts, ok2 := strings.CutPrefix(ts, "t=")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if !ok || !ok2 || err != nil {
		return time.Time{}, fmt.Errorf("malformed signature header %q", header)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return time.Time{}, errors.New("signature does not match the body")
	}
	return time.Unix(sec, 0), nil
}

// Requests returns the accepted requests; Refused the reasons of refused
// ones.
func (w *Webhook) Requests() []Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Request(nil), w.requests...)
}

// Refused returns why requests were refused.
func (w *Webhook) Refused() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bad...)
}
