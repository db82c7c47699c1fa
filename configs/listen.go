package configs

import (
	"net"
	"strconv"
)

// Listen is the optional listen: block: the HTTPS listener that serves the
// same API as the Unix socket, for people who have no shell on the host.
// There is no plain-HTTP listener: a network address is served with TLS
// only.
type Listen struct {
	// Address is host:port, e.g. 0.0.0.0:8443.
	Address string `yaml:"address"`
	// CertFile and KeyFile are the PEM certificate (chain) and private
	// key; `custodian cert self-signed` makes a pair for a first install.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (c *Config) validateListen(p *problems) {
	l := c.Listen
	if l == nil {
		return
	}
	host, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		p.add("listen.address", "%q is not host:port; use e.g. 0.0.0.0:8443", l.Address)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add("listen.address", "port %q is out of range; use 1 to 65535", port)
	} else if host != "" && net.ParseIP(host) == nil {
		p.add("listen.address", "host %q is not an IP address; use the address of an interface, or 0.0.0.0 for all", host)
	}
	if l.CertFile == "" || l.KeyFile == "" {
		p.add("listen", "cert_file and key_file are required: the daemon serves a network address with TLS only (make a pair with `custodian cert self-signed --cert FILE --key FILE`)")
	}
}
