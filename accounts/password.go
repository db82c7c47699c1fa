package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are RFC 9106's second recommended option (section 4):
// 64 MiB, 3 passes, 4 lanes, a 16-byte salt and a 32-byte tag.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// TestParams are cheap parameters for tests only: never use them for real
// passwords.
var TestParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters read from a stored hash, so that a damaged or
// planted hash cannot make one verification take unbounded memory or time.
const (
	maxMemory = 1 << 20 // KiB: 1 GiB
	maxTime   = 64
	minLen    = 8
	maxLen    = 64
)

// ErrHashFormat: a stored password hash is not an argon2id PHC string this
// package accepts.
var ErrHashFormat = errors.New("password hash is not an argon2id PHC string")

var b64 = base64.RawStdEncoding // PHC: standard alphabet, no padding

// Hash hashes pw with argon2id and a fresh random salt, as a PHC string:
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>.
func Hash(pw string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func (p Params) check() error {
	switch {
	case p.Threads < 1:
		return fmt.Errorf("%w: p=%d: at least one lane", ErrHashFormat, p.Threads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: m=%d: memory must be 8·p to %d KiB", ErrHashFormat, p.Memory, maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: t=%d: use 1 to %d passes", ErrHashFormat, p.Time, maxTime)
	case p.SaltLen < minLen || p.SaltLen > maxLen:
		return fmt.Errorf("%w: salt of %d bytes: use %d to %d", ErrHashFormat, p.SaltLen, minLen, maxLen)
	case p.KeyLen < 16 || p.KeyLen > maxLen:
		return fmt.Errorf("%w: hash of %d bytes: use 16 to %d", ErrHashFormat, p.KeyLen, maxLen)
	}
	return nil
}

// ParseHash reads a PHC string into its parameters, salt and hash. The
// error says which part is wrong.
func ParseHash(phc string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", ErrHashFormat)
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: algorithm %q; only argon2id is accepted", ErrHashFormat, parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: version %q; only v=%d is accepted", ErrHashFormat, parts[2], argon2.Version)
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil || (v != "0" && strings.HasPrefix(v, "0")) {
			return p, nil, nil, fmt.Errorf("%w: parameter %q is not a whole number", ErrHashFormat, kv)
		}
		i := strings.Index("mtp", k)
		if len(k) != 1 || i < 0 || seen[i] {
			return p, nil, nil, fmt.Errorf("%w: parameters %q: want m=…,t=…,p=… once each", ErrHashFormat, parts[3])
		}
		seen[i] = true
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, fmt.Errorf("%w: p=%d: at most 255 lanes", ErrHashFormat, n)
			}
			p.Threads = uint8(n)
		}
	}
	if seen != [3]bool{true, true, true} {
		return p, nil, nil, fmt.Errorf("%w: parameters %q: want m=…,t=…,p=…", ErrHashFormat, parts[3])
	}
	if salt, err = b64.Strict().DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt is not unpadded base64", ErrHashFormat)
	}
	if key, err = b64.Strict().DecodeString(parts[5]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: hash is not unpadded base64", ErrHashFormat)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}

// Verify reports whether pw matches the PHC string phc, comparing the
// hashes in constant time. An error means phc cannot be read (and pw is
// not accepted).
func Verify(pw, phc string) (bool, error) {
	p, salt, key, err := ParseHash(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// DummyVerify costs what one [Verify] of a hash made with p costs, and
// accepts nothing. Login calls it for an unknown username, so that the
// answer takes as long as for a wrong password.
func DummyVerify(p Params) {
	salt := make([]byte, max(p.SaltLen, minLen))
	argon2.IDKey([]byte("custodian: no such account"), salt, max(p.Time, 1), max(p.Memory, 8*uint32(max(p.Threads, 1))), max(p.Threads, 1), max(p.KeyLen, 16))
}
