package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"

	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/service"
)

// TestRouteRoleMatrix calls every route over the socket as a person of
// each role and checks the answer against the role matrix: a role the
// matrix allows is never refused by the role rule, any other always is,
// and a call without a session is refused before anything happens.
func TestRouteRoleMatrix(t *testing.T) {
	f := newFixture(t, nil)
	_, _, _ = f.serve(t)
	ctx := context.Background()
	anon := NewClient(f.cfg.SocketPath())
	// Logout ends the session it is called with: run it last.
	ordered := slices.Clone(routes)
	slices.SortStableFunc(ordered, func(a, b route) int {
		switch {
		case a.pattern == "POST /v1/logout":
			return 1
		case b.pattern == "POST /v1/logout":
			return -1
		}
		return 0
	})
	for _, p := range testPeople {
		cl := f.as(t, p.Username)
		for _, rt := range ordered {
			method, path, _ := strings.Cut(rt.pattern, " ")
			path = strings.NewReplacer("{name}", "extract", "{id}", "ds-000000000001", "{username}", "someone.else").Replace(path)
			body := ""
			if method == http.MethodPost {
				body = `{"reason": "a reason long enough"}`
				if b, ok := routeBodies[rt.pattern]; ok {
					body = b
				}
			}
			_, err := cl.do(ctx, method, path, strings.NewReader(body))
			switch rt.pattern { // refusals come in the stream
			case "POST /v1/jobs/{name}/run":
				_, err = cl.Run(ctx, "extract", nil)
			case "POST /v1/backup":
				_, err = cl.Backup(ctx, "/nonexistent/backup", nil)
			}
			refusedByRole := errors.Is(err, service.ErrForbidden) && strings.Contains(err.Error(), "role:")
			if rt.public {
				if refusedByRole {
					t.Errorf("%s as %s: the public route was refused by role: %v", rt.pattern, p.Username, err)
				}
				continue
			}
			if want := !service.Permits(p.Roles, rt.action); refusedByRole != want {
				t.Errorf("%s as %s (%s): refused by role = %v, want %v (%v)", rt.pattern, p.Username, p.Roles[0], refusedByRole, want, err)
			}
			if !rt.public {
				if _, err := anon.do(ctx, method, path, strings.NewReader(body)); !errors.Is(err, service.ErrUnauthenticated) {
					t.Errorf("%s without a session: %v", rt.pattern, err)
				}
			}
		}
	}
}

// TestBadRequests: a malformed or oversized body, an unknown field and a
// forged token each get a clear error and change nothing.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, nil)
	cl, _, _ := f.serve(t)
	ctx := context.Background()
	before, _ := f.as(t, "auditor.a").Log(ctx, 0, 100000)
	for name, body := range map[string]string{
		"malformed":     `{"username": "adam", "password": `,
		"unknown field": `{"username": "adam", "password": "x", "role": "admin"}`,
		"oversized":     `{"username": "adam", "password": "` + strings.Repeat("x", 20000) + `"}`,
	} {
		_, err := cl.do(ctx, http.MethodPost, "/v1/login", strings.NewReader(body))
		if !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%s body: %v", name, err)
		}
	}
	if _, err := cl.WithToken("forged-token").Status(ctx); !errors.Is(err, service.ErrUnauthenticated) {
		t.Errorf("forged token: %v", err)
	}
	after, _ := f.as(t, "auditor.a").Log(ctx, 0, 100000)
	for _, e := range after[len(before):] {
		if e.Type != string(audit.EvAccessRefused) && !strings.HasPrefix(e.Type, "login.") {
			t.Errorf("a bad request changed something: %+v", e)
		}
	}
	// Over the socket the host account is kept on the person's events.
	var found bool
	for _, e := range after {
		if e.Type == string(audit.EvLoginSucceeded) && e.Details["username"] == "officer.a" && e.Details["host_user"] != "" && e.Details["via"] == "socket" {
			found = true
		}
	}
	if !found {
		t.Error("a login over the socket must record the host account")
	}
}

// selfSignedPair writes a self-signed certificate for 127.0.0.1 and its
// key (0600), returning the certificate pool that trusts it.
func selfSignedPair(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	c, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(c)
	return certFile, keyFile, roots
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestHTTPSRoundTrip: the same API over TLS with a generated certificate:
// login, a call with the bearer token, the origin on the ledger; plain
// HTTP on that port gets nothing; a key others can read is refused.
func TestHTTPSRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	certFile, keyFile, roots := selfSignedPair(t, t.TempDir())
	addr := freePort(t)
	f.cfg.Listen = &configs.Listen{Address: addr, CertFile: certFile, KeyFile: keyFile}
	f.serve(t)
	ctx := context.Background()
	cl, err := NewHTTPSClient("https://"+addr, roots)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.Login(ctx, service.LoginRequest{Username: "sue", Password: f.pw["sue"]})
	if err != nil {
		t.Fatal(err)
	}
	me, err := cl.WithToken(res.Token).Whoami(ctx)
	if err != nil || me.Account.Username != "sue" || me.Via != "https" || me.HostUser != "" {
		t.Fatalf("whoami over https: %+v %v", me, err)
	}
	if _, err := cl.WithToken(res.Token).Requests(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Without trusting the certificate, the client refuses the server.
	untrusting, _ := NewHTTPSClient("https://"+addr, x509.NewCertPool())
	if _, err := untrusting.Login(ctx, service.LoginRequest{Username: "sue", Password: f.pw["sue"]}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate: %v", err)
	}
	// Plain HTTP is not served.
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || json.Valid(b) {
			t.Fatalf("plain HTTP answered %s: %s", resp.Status, b)
		}
	}
	evs, _ := f.as(t, "auditor.a").Log(ctx, 0, 100000)
	ok := false
	for _, e := range evs {
		ok = ok || (e.Type == string(audit.EvLoginSucceeded) && e.Details["username"] == "sue" && e.Details["via"] == "https" && strings.HasPrefix(e.Details["remote"], "127.0.0.1:"))
	}
	if !ok {
		t.Fatal("the https login and its remote address must be on the ledger")
	}
}

// TestHTTPSKeyMustBePrivate: serve refuses a TLS key others can read.
func TestHTTPSKeyMustBePrivate(t *testing.T) {
	f := newFixture(t, nil)
	certFile, keyFile, _ := selfSignedPair(t, t.TempDir())
	os.Chmod(keyFile, 0o644)
	f.cfg.Listen = &configs.Listen{Address: freePort(t), CertFile: certFile, KeyFile: keyFile}
	d, err := Open(f.cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen.key_file") {
		t.Fatalf("a readable TLS key: %v", err)
	}

}
