package configs

import (
	"errors"
	"strings"
	"testing"
)

// TestListen: the HTTPS listener needs a certificate and key (there is no
// plain-HTTP listener) and a host:port with an IP address.
func TestListen(t *testing.T) {
	for _, tc := range []struct {
		block, want string // want "" = valid
	}{
		{`listen: {address: "0.0.0.0:8443", cert_file: c.pem, key_file: k.pem}`, ""},
		{`listen: {address: "127.0.0.1:8443"}`, "listen: cert_file and key_file are required"},
		{`listen: {address: "8443", cert_file: c.pem, key_file: k.pem}`, "listen.address"},
		{`listen: {address: "0.0.0.0:99999", cert_file: c.pem, key_file: k.pem}`, "out of range"},
		{`listen: {address: "office.example:8443", cert_file: c.pem, key_file: k.pem}`, "not an IP address"},
	} {
		y := minimal + tc.block + "\n"
		_, err := Parse([]byte(y), t.TempDir())
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.block, err)
		case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.block, err, tc.want)
		}
	}
}
