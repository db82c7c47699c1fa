package daemon

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/rs/zerolog"

	"custodian/configs"
)

// listenTLS listens on the listen: block's address with TLS 1.2 or later.
// The key file must be private to the service account, as every secret.
func listenTLS(l *configs.Listen) (net.Listener, error) {
	if err := CheckSecretFile("listen.key_file", l.KeyFile); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listen: loading cert_file %s and key_file %s: %w", l.CertFile, l.KeyFile, err)
	}
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return nil, fmt.Errorf("listen.address: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}), nil
}

// tlsErrorLog sends net/http's own messages (failed handshakes from
// scanners, mostly) to the daemon's log at debug level.
func tlsErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("component", "https").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
