package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"empty", "", false},
		{"seven", "1234567", false},
		{"eight", "12345678", true},
		{"eight multibyte", "äöüßéèêë", true},
		{"seven multibyte is short even at 14 bytes", "äöüßéèê", false},
		{"128", strings.Repeat("x", 128), true},
		{"129", strings.Repeat("x", 129), false},
		{"invalid UTF-8", "abcdefgh\xff", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePassword(tc.pw)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidatePassword: %v", err)
				}
				return
			}
			wantField(t, err, "password")
		})
	}
}

func TestHashAndVerify(t *testing.T) {
	h, err := HashPassword("correct horse", DefaultHashParams())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=12288,t=3,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with the default parameters", h)
	}
	h2, err := HashPassword("correct horse", DefaultHashParams())
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct horsE", false}, {"", false}} {
		ok, err := VerifyPassword(tc.pw, h)
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	// A hash made with other parameters still verifies: they travel in it.
	old, err := HashPassword("correct horse", fastHash())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword("correct horse", old); !ok || err != nil {
		t.Fatalf("verifying a hash with other parameters: %v, %v", ok, err)
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	good, err := HashPassword("pw", fastHash())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2a$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01",
		"argon2i":       strings.Replace(good, "argon2id", "argon2i", 1),
		"wrong version": strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":   "$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5],
		"huge time":     "$argon2id$v=19$m=64,t=100000,p=1$" + parts[4] + "$" + parts[5],
		"zero threads":  "$argon2id$v=19$m=64,t=1,p=0$" + parts[4] + "$" + parts[5],
		"bad salt":      "$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"short key":     "$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$AAAA",
		"extra part":    good + "$x",
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := VerifyPassword("pw", h)
			if ok || !errors.Is(err, errBadHash) {
				t.Fatalf("VerifyPassword = %v, %v; want false, errBadHash", ok, err)
			}
		})
	}
}

// BenchmarkHashPassword measures the cost of one sign-in's hash with the
// default parameters (the figure quoted on DefaultHashParams).
func BenchmarkHashPassword(b *testing.B) {
	p := DefaultHashParams()
	reportCPU(b)
	for b.Loop() {
		if _, err := HashPassword("correct horse battery", p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("correct horse battery", DefaultHashParams())
	if err != nil {
		b.Fatal(err)
	}
	reportCPU(b)
	for b.Loop() {
		if ok, err := VerifyPassword("correct horse battery", h); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
