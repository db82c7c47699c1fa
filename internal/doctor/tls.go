package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"custodian/daemon"
)

// certWarn is how long before its expiry a TLS certificate is reported.
const certWarn = 30 * 24 * time.Hour

// checkTLS checks the HTTPS listener's certificate and key (listen:): the
// key is private, the pair loads, and the certificate is not expired or
// about to expire.
func checkTLS(_ context.Context, o *Options) []Finding {
	l := o.Config.Listen
	if l == nil {
		return []Finding{{"tls certificate", OK, "no HTTPS listener configured (listen:); the API is on the local socket only", ""}}
	}
	if err := daemon.CheckSecretFile("listen.key_file", l.KeyFile); err != nil {
		return []Finding{{"tls certificate", Fail, err.Error(), fixOf(err)}}
	}
	pair, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		return []Finding{{"tls certificate", Fail, fmt.Sprintf("listen: cert_file %s and key_file %s do not load: %v", l.CertFile, l.KeyFile, err),
			"give the certificate (PEM, leaf first) and its private key; `custodian cert self-signed --cert FILE --key FILE` makes a pair"}}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return []Finding{{"tls certificate", Fail, fmt.Sprintf("listen.cert_file %s: %v", l.CertFile, err), ""}}
	}
	now := o.now()
	left := leaf.NotAfter.Sub(now)
	msg := fmt.Sprintf("listen.cert_file %s (%s) expires %s", l.CertFile, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.DateOnly))
	switch {
	case left <= 0:
		return []Finding{{"tls certificate", Fail, msg + ": expired", "renew it and restart the daemon"}}
	case now.Before(leaf.NotBefore):
		return []Finding{{"tls certificate", Fail, msg + ": not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339), "check the clock, or the certificate"}}
	case left < certWarn:
		return []Finding{{"tls certificate", Warn, fmt.Sprintf("%s, in %d days", msg, int(left.Hours()/24)), "renew it before then and restart the daemon"}}
	}
	return []Finding{{"tls certificate", OK, fmt.Sprintf("%s, in %d days", msg, int(left.Hours()/24)), ""}}
}
