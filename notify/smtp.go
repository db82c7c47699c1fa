package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"os"
	"strings"
	"time"

	"custodian/configs"
)

// ErrNoStartTLS: the mail server did not offer STARTTLS, so nothing was
// sent (mail is never sent in the clear).
var ErrNoStartTLS = errors.New("the mail server does not offer STARTTLS; custodian never sends mail without it")

// sendMail submits one message over SMTP: EHLO, STARTTLS (required, with
// the server's certificate checked), AUTH PLAIN if a username is set, then
// the message.
func sendMail(ctx context.Context, s *configs.NotifySMTP, it item) error {
	host, _, err := net.SplitHostPort(s.Address)
	if err != nil {
		return err
	}
	tlsCfg, err := tlsConfig(host, s.CAFile)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Address)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	helo, _ := os.Hostname()
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return ErrNoStartTLS
	}
	if err := c.StartTLS(tlsCfg); err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	if s.Username != "" {
		pass, err := readSecret("notify.smtp.password_file", s.PasswordFile)
		if err != nil {
			return err
		}
		if err := c.Auth(smtp.PlainAuth("", s.Username, string(pass), host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	if err := c.Rcpt(it.Recipient); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(formatMail(s.From, it)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// formatMail writes the message: plain text, UTF-8, quoted-printable.
func formatMail(from string, it item) []byte {
	var b bytes.Buffer
	domain := "custodian.invalid"
	if _, d, ok := strings.Cut(from, "@"); ok {
		domain = strings.Trim(d, "> ")
	}
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", it.Recipient)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", "[custodian] "+it.Message.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", it.Created.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%d@%s>\r\n", it.ID, it.Created.UnixNano(), domain)
	fmt.Fprintf(&b, "X-Custodian-Kind: %s\r\n", it.Kind)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(it.Message.Text, "\n", "\r\n")))
	qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

// tlsConfig checks the server's certificate for host against caFile, or
// the system's roots when caFile is empty.
func tlsConfig(host, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// readSecret reads a secret file, without its trailing line end.
func readSecret(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %s is empty", what, path)
	}
	return b, nil
}
