package accounts

import (
	"errors"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestHashDefaultParams: the real parameters are RFC 9106's second
// recommended option and the encoding is the PHC string format.
func TestHashDefaultParams(t *testing.T) {
	if DefaultParams != (Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}) {
		t.Fatalf("DefaultParams = %+v", DefaultParams)
	}
	h, err := Hash("Correct-Horse-9", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	// 16 bytes of salt and 32 of hash in unpadded base64: 22 and 43 characters.
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=4\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("not a PHC string: %s", h)
	}
	if ok, err := Verify("Correct-Horse-9", h); !ok || err != nil {
		t.Errorf("Verify(right) = %v, %v", ok, err)
	}
}

func TestHashAndVerify(t *testing.T) {
	h1, err := Hash("Correct-Horse-9", TestParams)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := Hash("Correct-Horse-9", TestParams)
	if h1 == h2 {
		t.Error("two hashes of one password must differ (fresh salt)")
	}
	for pw, want := range map[string]bool{"Correct-Horse-9": true, "correct-horse-9": false, "": false, "Correct-Horse-9 ": false} {
		if ok, err := Verify(pw, h1); ok != want || err != nil {
			t.Errorf("Verify(%q) = %v, %v", pw, ok, err)
		}
	}
	// A hash made elsewhere with other parameters verifies with its own.
	p := Params{Memory: 256, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 16}
	h3, err := Hash("x", p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _, err := ParseHash(h3); err != nil || got != p {
		t.Errorf("ParseHash = %+v, %v", got, err)
	}
	if ok, _ := Verify("x", h3); !ok {
		t.Error("verify with the stored parameters")
	}
	if _, err := Hash("x", Params{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}); !errors.Is(err, ErrHashFormat) {
		t.Errorf("t=0: %v", err)
	}
}

func TestParseHashErrors(t *testing.T) {
	good, _ := Hash("x", TestParams)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, tc := range []struct{ phc, want string }{
		{"", "want $argon2id$v=19"},
		{"plaintext", "want $argon2id$v=19"},
		{"$2b$10$abcdefghijklmnopqrstuv", "want $argon2id"},
		{"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, `algorithm "argon2i"`},
		{"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, `version "v=16"`},
		{"$argon2id$v=19$m=64,t=1$" + salt + "$" + key, "want m=…,t=…,p=…"},
		{"$argon2id$v=19$m=64,t=1,p=1,p=1$" + salt + "$" + key, "once each"},
		{"$argon2id$v=19$m=64,t=1,x=1$" + salt + "$" + key, "once each"},
		{"$argon2id$v=19$m=sixty,t=1,p=1$" + salt + "$" + key, "not a whole number"},
		{"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, "not a whole number"},
		{"$argon2id$v=19$m=4,t=1,p=1$" + salt + "$" + key, "m=4: memory"},
		{"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, "m=4194304: memory"},
		{"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key, "t=1000"},
		{"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "p=0"},
		{"$argon2id$v=19$m=64,t=1,p=300$" + salt + "$" + key, "p=300"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, "salt is not unpadded base64"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "!", "hash is not unpadded base64"},
		{"$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key, "salt of 3 bytes"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA", "hash of 3 bytes"},
	} {
		_, _, _, err := ParseHash(tc.phc)
		if !errors.Is(err, ErrHashFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.phc, err, tc.want)
		}
		if ok, err := Verify("x", tc.phc); ok || err == nil {
			t.Errorf("Verify accepted %q", tc.phc)
		}
	}
}

// TestDummyVerifyCostsOneHash: an unknown user's login costs what a wrong
// password costs. Measured in memory, not time: argon2id's cost is its
// memory, which DummyVerify must allocate as Verify does.
func TestDummyVerifyCostsOneHash(t *testing.T) {
	p := Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, _ := Hash("x", p)
	alloc := func(f func()) uint64 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	verify := alloc(func() { Verify("wrong", h) })
	dummy := alloc(func() { DummyVerify(p) })
	if verify < 8<<20 || dummy < verify*9/10 {
		t.Errorf("DummyVerify allocated %d bytes, Verify %d", dummy, verify)
	}
	DummyVerify(Params{}) // zero parameters are raised to the minimum, never a panic
}

// FuzzParseHash: no input makes ParseHash panic, and whatever it accepts
// is within the bounds (so Verify's cost is bounded).
func FuzzParseHash(f *testing.F) {
	good, _ := Hash("x", TestParams)
	for _, s := range []string{good, "", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", "$argon2id$v=19$m=1,t=1,p=1$$", "$$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParseHash(s)
		if err != nil {
			return
		}
		if p.check() != nil || int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) || p.Memory > maxMemory {
			t.Fatalf("accepted out of bounds: %+v", p)
		}
	})
}
