package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// Per-object keys. Every object written since the per-object key format is
// encrypted to an X25519 key of its own (the object key); that key, in
// age-keygen form, is kept in keys/<first 2 hex>/<id>.key, age-encrypted to
// the master key. The key file is apart from the ciphertext, so erasing it
// (overwrite, fsync, unlink) makes every copy of the ciphertext
// undecryptable, wherever it is: the cryptographic erase of NIST SP 800-88.
const (
	keysDir = "keys"
	keyExt  = ".key"

	// maxObjectKeyFile bounds a key file: an age header and one identity.
	maxObjectKeyFile = 4 << 10
)

// Object formats, as Format reports them.
const (
	// FormatObjectKey: the payload is encrypted to a per-object key kept
	// in keys/, wrapped to the master key.
	FormatObjectKey = "object-key"
	// FormatLegacy: an object written before per-object keys, encrypted
	// to the master key directly (its data key is in its own header).
	FormatLegacy = "legacy"
)

// objectKey is a per-object X25519 key: its 32 secret bytes, and the age
// identity built from them.
type objectKey struct {
	raw [32]byte
	id  *age.X25519Identity
}

func newObjectKey() (*objectKey, error) {
	k := &objectKey{}
	if _, err := rand.Read(k.raw[:]); err != nil {
		return nil, fmt.Errorf("vault: generate object key: %w", err)
	}
	s := bech32Encode("age-secret-key-", k.raw[:])
	id, err := age.ParseX25519Identity(strings.ToUpper(s))
	if err != nil {
		return nil, fmt.Errorf("vault: object key: %w", err)
	}
	k.id = id
	return k, nil
}

// parseObjectKey reads the identity line of a key file's plaintext.
func parseObjectKey(plain []byte) (*objectKey, error) {
	line := strings.TrimSpace(string(plain))
	hrp, data, err := bech32Decode(line)
	if err != nil || strings.ToLower(hrp) != "age-secret-key-" || len(data) != 32 {
		return nil, errors.New("not an age X25519 identity")
	}
	id, err := age.ParseX25519Identity(line)
	if err != nil {
		return nil, err
	}
	k := &objectKey{id: id}
	copy(k.raw[:], data)
	clear(data)
	return k, nil
}

// text is the key file's plaintext: the identity, as age-keygen writes it.
func (k *objectKey) text() []byte {
	return []byte(k.id.String() + "\n")
}

func (k *objectKey) wipe() { clear(k.raw[:]) }

// keyPath returns the key file path of a validated object ID.
func (v *Vault) keyPath(id string) string {
	return filepath.Join(v.dir, keysDir, id[:2], id+keyExt)
}

// wrapKey encrypts an object key to recipient.
func wrapKey(k *objectKey, recipient age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipient)
	if err != nil {
		return nil, err
	}
	plain := k.text()
	defer clear(plain)
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unwrapKey decrypts a key file's contents with the master identity.
func unwrapKey(wrapped []byte, ident *age.X25519Identity) (*objectKey, error) {
	r, err := age.Decrypt(bytes.NewReader(wrapped), ident)
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxObjectKeyFile))
	defer clear(plain)
	if err != nil {
		return nil, err
	}
	return parseObjectKey(plain)
}

// readKeyFile returns the wrapped key of object id, or nil if it has none
// (a legacy object, or a destroyed one).
func (v *Vault) readKeyFile(id string) ([]byte, error) {
	b, err := readSmallFile(v.keyPath(id), maxObjectKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// loadObjectKey unwraps object id's key with the master identity; nil if
// the object has no key file.
func (v *Vault) loadObjectKey(id string, ident *Identity) (*objectKey, error) {
	wrapped, err := v.readKeyFile(id)
	if err != nil || wrapped == nil {
		return nil, err
	}
	k, err := unwrapKey(wrapped, ident.x)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, fmt.Errorf("%w: key file of %s", ErrWrongIdentity, id)
		}
		return nil, fmt.Errorf("%w: key file of %s: %w", ErrCorrupt, id, err)
	}
	return k, nil
}

// writeKeyFile writes wrapped as object id's key file (0600) through tmp/:
// with durable set, the file and its directory are fsynced; otherwise a
// later Flush makes it durable.
func (v *Vault) writeKeyFile(id string, wrapped []byte, durable bool) error {
	root := filepath.Join(v.dir, keysDir)
	switch err := os.Mkdir(root, 0o700); {
	case err == nil:
		if durable {
			if err := syncDir(v.dir); err != nil {
				return err
			}
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("vault: %w", err)
	}
	sub := filepath.Join(root, id[:2])
	switch err := os.Mkdir(sub, 0o700); {
	case err == nil:
		if durable {
			if err := syncDir(root); err != nil {
				return err
			}
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("vault: %w", err)
	}
	if durable {
		return writeFileAtomic(filepath.Join(v.dir, tmpDir), v.keyPath(id), wrapped, 0o600)
	}
	tmp := filepath.Join(v.dir, tmpDir, id+keyExt+partialExt)
	if err := os.WriteFile(tmp, wrapped, 0o600); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("vault: write key of %s: %w", id, err)
	}
	if err := os.Rename(tmp, v.keyPath(id)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("vault: write key of %s: %w", id, err)
	}
	return nil
}

// HasKeyFile reports whether object id has a per-object key file.
func (v *Vault) HasKeyFile(id string) bool {
	if !ValidID(id) {
		return false
	}
	fi, err := os.Lstat(v.keyPath(id))
	return err == nil && fi.Mode().IsRegular()
}

// Format reports object id's format: FormatObjectKey if it has a key
// file, else FormatLegacy.
func (v *Vault) Format(id string) string {
	if v.HasKeyFile(id) {
		return FormatObjectKey
	}
	return FormatLegacy
}

// KeyFilePath returns the path of object id's key file (which may not
// exist: a legacy or destroyed object).
func (v *Vault) KeyFilePath(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	return v.keyPath(id), nil
}

// RevealObjectKey returns object id's secret key: the 32 raw bytes and the
// age identity string (AGE-SECRET-KEY-1...). It exists for the tests that
// prove a destroyed key is nowhere on disk, and for recovery by hand; the
// caller must clear the bytes and never log them. A legacy object has no
// key of its own (ErrNotFound).
func (v *Vault) RevealObjectKey(id string, ident *Identity) (raw []byte, identity string, err error) {
	if err := checkID(id); err != nil {
		return nil, "", err
	}
	if ident == nil || ident.x == nil {
		return nil, "", fmt.Errorf("%w: nil identity", ErrInvalidArgument)
	}
	k, err := v.loadObjectKey(id, ident)
	if err != nil {
		return nil, "", err
	}
	if k == nil {
		return nil, "", fmt.Errorf("%w: object %s has no key file", ErrNotFound, id)
	}
	defer k.wipe()
	return bytes.Clone(k.raw[:]), k.id.String(), nil
}

// ListKeys returns the IDs of every object key file in keys/, in lexical
// order.
func (v *Vault) ListKeys() ([]string, error) {
	return listTree(filepath.Join(v.dir, keysDir), keyExt)
}

// listTree lists the IDs of files <xx>/<id><ext> under root; a missing
// root holds none.
func listTree(root, ext string) ([]string, error) {
	subs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: list: %w", err)
	}
	var ids []string
	for _, sub := range subs {
		name := sub.Name()
		if !sub.IsDir() || len(name) != 2 || !isLowerHex(name) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(root, name))
		if err != nil {
			return nil, fmt.Errorf("vault: list: %w", err)
		}
		for _, e := range entries {
			id, ok := strings.CutSuffix(e.Name(), ext)
			if ok && e.Type().IsRegular() && ValidID(id) && id[:2] == name {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// bech32 (BIP 173), as age encodes X25519 keys. Only what the key format
// needs: encoding 8-bit data and decoding it back.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (b>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func bech32HRPExpand(hrp string) []byte {
	h := []byte(strings.ToLower(hrp))
	out := make([]byte, 0, 2*len(h)+1)
	for _, c := range h {
		out = append(out, c>>5)
	}
	out = append(out, 0)
	for _, c := range h {
		out = append(out, c&31)
	}
	return out
}

func convertBits(data []byte, from, to uint, pad bool) ([]byte, error) {
	var acc uint32
	var bits uint
	maxv := uint32(1)<<to - 1
	var out []byte
	for _, b := range data {
		if uint32(b)>>from != 0 {
			return nil, errors.New("bech32: invalid data")
		}
		acc = acc<<from | uint32(b)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, errors.New("bech32: invalid padding")
	}
	return out, nil
}

// bech32Encode encodes data under hrp (lower case).
func bech32Encode(hrp string, data []byte) string {
	values, _ := convertBits(data, 8, 5, true)
	exp := append(bech32HRPExpand(hrp), values...)
	mod := bech32Polymod(append(exp, 0, 0, 0, 0, 0, 0)) ^ 1
	var b strings.Builder
	b.WriteString(strings.ToLower(hrp))
	b.WriteByte('1')
	for _, v := range values {
		b.WriteByte(bech32Charset[v])
	}
	for i := 0; i < 6; i++ {
		b.WriteByte(bech32Charset[(mod>>uint(5*(5-i)))&31])
	}
	return b.String()
}

// bech32Decode decodes s (either case, not mixed) to its hrp and 8-bit data.
func bech32Decode(s string) (string, []byte, error) {
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, errors.New("bech32: mixed case")
	}
	s = strings.ToLower(s)
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errors.New("bech32: bad separator")
	}
	hrp := s[:pos]
	var values []byte
	for i := pos + 1; i < len(s); i++ {
		d := strings.IndexByte(bech32Charset, s[i])
		if d < 0 {
			return "", nil, errors.New("bech32: bad character")
		}
		values = append(values, byte(d))
	}
	if bech32Polymod(append(bech32HRPExpand(hrp), values...)) != 1 {
		return "", nil, errors.New("bech32: bad checksum")
	}
	data, err := convertBits(values[:len(values)-6], 5, 8, false)
	return hrp, data, err
}
