package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// GenerateSigningKey returns a new Ed25519 note signer key (secret) and
// its verifier key (public) for the given key name, for example
// "custodian.example.org/ledger".
func GenerateSigningKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate signing key: %w", err)
	}
	return skey, vkey, nil
}

// KeyedSigner is a note signer that knows its own verifier key. The
// signers returned by [NewSigner] implement it; other signers (an HSM,
// say) need [Options.VerifierKey].
type KeyedSigner interface {
	note.Signer
	VerifierKey() string
}

type keyedSigner struct {
	note.Signer
	vkey string
}

func (s *keyedSigner) VerifierKey() string { return s.vkey }

// NewSigner returns a signer for an encoded note signer key as produced
// by [GenerateSigningKey]. The result implements [KeyedSigner].
func NewSigner(skey string) (note.Signer, error) {
	// Errors never include the key.
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: signer key: %w", err)
	}
	vkey, err := verifierKeyOf(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: signer key: %w", err)
	}
	if _, err := checkKeyPair(s, vkey); err != nil {
		return nil, err
	}
	return &keyedSigner{Signer: s, vkey: vkey}, nil
}

// verifierKeyOf derives the verifier key from an Ed25519 signer key
// "PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>", already validated by
// note.NewSigner.
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", errors.New("malformed key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil {
		return "", errors.New("malformed key")
	}
	defer clear(key)
	if len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("not an Ed25519 key")
	}
	priv := ed25519.NewKeyFromSeed(key[1:])
	defer clear(priv)
	return note.NewEd25519VerifierKey(parts[2], priv.Public().(ed25519.PublicKey))
}

// checkKeyPair checks that s produces signatures vkey accepts.
func checkKeyPair(s note.Signer, vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	if v.Name() != s.Name() || v.KeyHash() != s.KeyHash() {
		return nil, fmt.Errorf("%w: signer %s+%08x, verifier %s+%08x",
			ErrKeyMismatch, s.Name(), s.KeyHash(), v.Name(), v.KeyHash())
	}
	msg, err := note.Sign(&note.Note{Text: "custodian ledger key check\n"}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: test signature: %w", err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		return nil, fmt.Errorf("%w: test signature rejected: %v", ErrKeyMismatch, err)
	}
	return v, nil
}

// signCheckpoint returns the signed note for tree.
func signCheckpoint(s note.Signer, tree tlog.Tree) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: formatCheckpoint(s.Name(), tree)}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// openCheckpoint checks msg's signature with v and parses the tree.
func openCheckpoint(msg []byte, v note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return tlog.Tree{}, fmt.Errorf("not signed by %s+%08x", v.Name(), v.KeyHash())
		}
		return tlog.Tree{}, err
	}
	return parseCheckpointText(n.Text, v.Name())
}

// Checkpoints use the C2SP tlog-checkpoint body: the log's origin (the
// signing key's name), the tree size in decimal and the tree hash in base64,
// one per line. Auditors' tools for transparency logs read it as is.
func formatCheckpoint(origin string, tree tlog.Tree) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, tree.N, base64.StdEncoding.EncodeToString(tree.Hash[:]))
}

func parseCheckpointText(text, origin string) (tlog.Tree, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return tlog.Tree{}, errors.New("malformed checkpoint: want origin, size and hash lines")
	}
	if lines[0] != origin {
		return tlog.Tree{}, fmt.Errorf("checkpoint of log %q, want %q", lines[0], origin)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return tlog.Tree{}, fmt.Errorf("malformed checkpoint size %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return tlog.Tree{}, fmt.Errorf("malformed checkpoint hash %q", lines[2])
	}
	tree := tlog.Tree{N: n}
	copy(tree.Hash[:], h)
	return tree, nil
}

// ParseCheckpoint checks the signature on a checkpoint note with the
// given verifier key and returns the tree it commits to.
func ParseCheckpoint(msg []byte, vkey string) (tlog.Tree, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("audit: verifier key: %w", err)
	}
	tree, err := openCheckpoint(msg, v)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return tree, nil
}
