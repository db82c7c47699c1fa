package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custodian/configs"
)

// certPair writes a certificate valid until notAfter and its key (0600).
func certPair(t *testing.T, notAfter time.Time) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "custodian.test"},
		NotBefore: notAfter.Add(-400 * 24 * time.Hour), NotAfter: notAfter, DNSNames: []string{"custodian.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	c, k := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return c, k
}

// TestDoctorTLSCertificate: the HTTPS listener's certificate is reported
// ok, due soon (warn) or expired (fail), and a readable key fails.
func TestDoctorTLSCertificate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		keyMode  os.FileMode
		want     Severity
		text     string
	}{
		{"valid", now.Add(200 * 24 * time.Hour), 0o600, OK, "in 200 days"},
		{"due soon", now.Add(10 * 24 * time.Hour), 0o600, Warn, "in 10 days"},
		{"expired", now.Add(-time.Hour), 0o600, Fail, "expired"},
		{"readable key", now.Add(200 * 24 * time.Hour), 0o644, Fail, "listen.key_file"},
	} {
		c, k := certPair(t, tc.notAfter)
		os.Chmod(k, tc.keyMode)
		o := &Options{Config: &configs.Config{Listen: &configs.Listen{Address: "0.0.0.0:8443", CertFile: c, KeyFile: k}}, Now: func() time.Time { return now }}
		fs := checkTLS(context.Background(), o)
		if len(fs) != 1 || fs[0].Severity != tc.want || !strings.Contains(fs[0].Message, tc.text) {
			t.Errorf("%s: %+v", tc.name, fs)
		}
	}
	if fs := checkTLS(context.Background(), &Options{Config: &configs.Config{}}); fs[0].Severity != OK {
		t.Errorf("no listener: %+v", fs)
	}
}
