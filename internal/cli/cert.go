package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"custodian/daemon"
)

func newCertCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "cert", Short: "TLS certificates for the HTTPS listener"}
	var certFile, keyFile string
	var hosts []string
	var days int
	ss := &cobra.Command{
		Use:   "self-signed --cert FILE --key FILE [--host NAME]... [--days N]",
		Short: "Make a self-signed certificate and key for a first install",
		Long: `self-signed writes an ECDSA P-256 certificate (FILE, 0644) and its private key
(0600) for the listen: block, valid for --days (default 397) for each --host
(DNS names or IP addresses; default: this host's name, localhost and
127.0.0.1). Browsers and clients must be told to trust it (--ca-file FILE);
replace it with one from the agency's certificate authority when there is one.
Its SHA-256 fingerprint is printed on the last line, to compare on first
connection.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if certFile == "" || keyFile == "" {
				return usageError{errors.New("--cert and --key are required")}
			}
			for _, p := range []string{certFile, keyFile} {
				if _, err := os.Lstat(p); err == nil {
					return usageError{fmt.Errorf("%s exists; choose a new file", p)}
				}
			}
			if days < 1 || days > 825 {
				return usageError{fmt.Errorf("--days: %d is out of range; use 1 to 825", days)}
			}
			if len(hosts) == 0 {
				if h, err := os.Hostname(); err == nil {
					hosts = append(hosts, h)
				}
				hosts = append(hosts, "localhost", "127.0.0.1")
			}
			der, keyDER, err := selfSigned(hosts, time.Duration(days)*24*time.Hour)
			if err != nil {
				return err
			}
			if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
				return err
			}
			if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
				return err
			}
			if err := daemon.CheckSecretFile("--key", keyFile); err != nil {
				return err
			}
			sum := sha256.Sum256(der)
			fmt.Fprintf(g.stdout, "Wrote %s and %s (hosts %v, valid %d days)\nSHA-256 fingerprint:\n%s\n", certFile, keyFile, hosts, days, hex.EncodeToString(sum[:]))
			return nil
		},
	}
	ss.Flags().StringVar(&certFile, "cert", "", "certificate file to write (PEM)")
	ss.Flags().StringVar(&keyFile, "key", "", "private key file to write (PEM, mode 0600)")
	ss.Flags().StringArrayVar(&hosts, "host", nil, "a DNS name or IP address the certificate is for (repeat)")
	ss.Flags().IntVar(&days, "days", 397, "validity in days")
	c.AddCommand(ss)
	return c
}

// selfSigned makes a self-signed ECDSA P-256 server certificate for hosts.
func selfSigned(hosts []string, valid time.Duration) (certDER, keyDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"custodian"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that it can be trusted as its own root
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	return certDER, keyDER, err
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
