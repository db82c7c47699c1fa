package cli

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"custodian/daemon"
	"custodian/internal/fsutil"
)

// sessionFile is where the session token lives: CUSTODIAN_SESSION_FILE if
// set (so one host account can hold several people's sessions in scripts),
// else $XDG_CONFIG_HOME/custodian/session (~/.config/custodian/session).
func sessionFile() (string, error) {
	if p := os.Getenv("CUSTODIAN_SESSION_FILE"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory for the session file: set CUSTODIAN_SESSION_FILE (%v)", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "custodian", "session"), nil
}

// savedSession is the session file's content.
type savedSession struct {
	Token    string `json:"token"`
	Username string `json:"username"`
	Server   string `json:"server,omitempty"` // the HTTPS URL, or "" for the socket
}

func loadSession() (savedSession, error) {
	var s savedSession
	p, err := sessionFile()
	if err != nil {
		return s, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := daemon.CheckSecretFile("session file", p); err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("session file %s is damaged (%v); log in again with `custodian login`", p, err)
	}
	return s, nil
}

func saveSession(s savedSession) (string, error) {
	p, err := sessionFile()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, _ := json.Marshal(s)
	return p, fsutil.WriteFileAtomic(p, b, 0o600)
}

func removeSession() error {
	p, err := sessionFile()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// anonClient is a client without a session: over HTTPS with --server,
// else over the configuration's socket.
func (g *globals) anonClient() (*daemon.Client, error) {
	if g.server != "" {
		var roots *x509.CertPool
		if g.caFile != "" {
			pem, err := os.ReadFile(g.caFile)
			if err != nil {
				return nil, fmt.Errorf("--ca-file: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, usageError{fmt.Errorf("--ca-file: %s holds no PEM certificate", g.caFile)}
			}
		}
		cl, err := daemon.NewHTTPSClient(g.server, roots)
		if err != nil {
			return nil, usageError{err}
		}
		return cl, nil
	}
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	return daemon.NewClient(cfg.SocketPath()), nil
}

// client is a client acting through the saved session.
func (g *globals) client() (*daemon.Client, error) {
	cl, err := g.anonClient()
	if err != nil {
		return nil, err
	}
	s, err := loadSession()
	if err != nil {
		return nil, err
	}
	return cl.WithToken(s.Token), nil
}

// readSecret reads a password from file (- for stdin; a file others can
// read is refused), else prompts on the terminal. what names the flag.
func readSecret(file, flag, prompt string, confirm bool, stderr io.Writer) (string, error) {
	if file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
		} else {
			if err := daemon.CheckSecretFile(flag, file); err != nil {
				return "", err
			}
			b, err = os.ReadFile(file)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usageError{fmt.Errorf("no password: use %s FILE (- for stdin)", flag)}
	}
	fmt.Fprint(stderr, prompt)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if confirm {
		fmt.Fprint(stderr, "Repeat: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(p) != string(q) {
			return "", usageError{errors.New("the passwords differ")}
		}
	}
	return string(p), nil
}

// writeIssued writes issued passwords, one "USER PASSWORD" line each, to a
// new 0600 file; it refuses to overwrite one.
func writeIssued(path string, lines []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(f, l); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
