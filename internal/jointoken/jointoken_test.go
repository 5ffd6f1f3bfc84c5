package jointoken

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// librarySign is how tokens were signed before Sign wrote them itself:
// the reference that Sign must match byte for byte, so that every
// verifier (this package, another media provider's JWT library) sees the
// same tokens as before.
func librarySign(key []byte, c Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.UserID,
			Audience:  jwt.ClaimStrings{audience},
			ID:        c.ID,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		Class:   c.ClassID,
		Name:    c.Name,
		Role:    c.Role,
		Service: c.Service,
	}).SignedString(key)
}

func newSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sample() Claims {
	now := time.Date(2030, 3, 14, 9, 26, 53, 589_793_238, time.FixedZone("CET", 3600))
	return Claims{
		ClassID:   "5b0c2a4e-9f1d-4c1e-8a7b-3d2f1e0c9b8a",
		UserID:    "0e6f3a1b-2c4d-4e5f-9a8b-7c6d5e4f3a2b",
		Name:      "Ada Lovelace",
		Role:      RoleAttendee,
		Service:   "CHIME",
		ID:        "c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e0f",
		IssuedAt:  now,
		ExpiresAt: now.Add(time.Hour),
	}
}

func TestSignMatchesLibrary(t *testing.T) {
	s := newSigner(t)
	names := []string{
		"", "Ada", `quote " and backslash \`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
		"\x00\x01\x1f\x7f", "ünïcödé 名前 🎓", "line\u2028para\u2029", "bad \xff\xfe utf-8 \xe2\x82", "\xed\xa0\x80 surrogate",
	}
	var cases []Claims
	for _, n := range names {
		c := sample()
		c.Name = n
		cases = append(cases, c)
	}
	host := sample()
	host.Role, host.Service = RoleHost, "IVS"
	noIDs := sample()
	noIDs.UserID, noIDs.ID, noIDs.ClassID = "", "", ""
	zero := Claims{}
	old := sample()
	old.IssuedAt, old.ExpiresAt = time.Date(1960, 1, 1, 0, 0, 0, 500_000_000, time.UTC), time.Unix(-1, 999_999_999)
	cases = append(cases, host, noIDs, zero, old)

	// Random names and IDs: printable, control, multi-byte and broken bytes.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "9", " ", `"`, `\`, "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\u2029", "\xff", "\xc3", "\xe2\x82"}
	randString := func() string {
		var b strings.Builder
		for range rng.IntN(24) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 500 {
		c := sample()
		c.Name, c.UserID, c.ID, c.ClassID, c.Service = randString(), randString(), randString(), randString(), randString()
		c.IssuedAt = time.Unix(rng.Int64N(1<<34)-1<<33, rng.Int64N(1e9))
		c.ExpiresAt = c.IssuedAt.Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
		cases = append(cases, c)
	}

	for i, c := range cases {
		got, err := s.Sign(c)
		if err != nil {
			t.Fatalf("case %d: Sign: %v", i, err)
		}
		want, err := librarySign(testKey, c)
		if err != nil {
			t.Fatalf("case %d: library: %v", i, err)
		}
		if got != want {
			t.Fatalf("case %d (%+v):\n got  %s\n want %s", i, c, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	s := newSigner(t)
	c := sample()
	c.Name = `Zoë "the <host>"`
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok, c.IssuedAt.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := c
	want.IssuedAt, want.ExpiresAt = c.IssuedAt.Truncate(time.Second), c.ExpiresAt.Truncate(time.Second)
	if !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("times = %v, %v; want %v, %v", got.IssuedAt, got.ExpiresAt, want.IssuedAt, want.ExpiresAt)
	}
	got.IssuedAt, got.ExpiresAt, want.IssuedAt, want.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Fatalf("claims = %+v, want %+v", got, want)
	}
}

func TestVerifyRefuses(t *testing.T) {
	s := newSigner(t)
	c := sample()
	good, _ := s.Sign(c)
	other, err := NewSigner([]byte("another key, also thirty-two bytes long"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(c)
	noClass := c
	noClass.ClassID = ""
	noClassTok, _ := s.Sign(noClass)
	badRole := c
	badRole.Role = "OWNER"
	badRoleTok, _ := s.Sign(badRole)
	// A token of another audience (a session-like JWT) signed with the same key.
	otherAud, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: c.UserID, Audience: jwt.ClaimStrings{"liveclass-session"}, ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
	}).SignedString(testKey)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: c.UserID, Audience: jwt.ClaimStrings{audience}, ExpiresAt: jwt.NewNumericDate(c.ExpiresAt)},
		Class:            c.ClassID, Role: RoleHost,
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.Replace(parts[1], parts[1][10:14], "AAAA", 1) + "." + parts[2]

	within := c.IssuedAt.Add(time.Minute)
	for _, tc := range []struct {
		name  string
		token string
		at    time.Time
	}{
		{"tampered payload", tampered, within},
		{"another key", foreign, within},
		{"expired", good, c.ExpiresAt.Add(time.Second)},
		{"no class", noClassTok, within},
		{"unknown role", badRoleTok, within},
		{"another audience", otherAud, within},
		{"alg none", none, within},
		{"garbage", "not.a.token", within},
		{"empty", "", within},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Verify(tc.token, tc.at); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Fatal("NewSigner accepted a 5-byte key")
	}
}

// TestSignConcurrent shares one Signer, and so its pool of HMAC states,
// between goroutines (run with -race).
func TestSignConcurrent(t *testing.T) {
	s := newSigner(t)
	want, _ := s.Sign(sample())
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 200 {
				if got, _ := s.Sign(sample()); got != want {
					errs <- errors.New("concurrent Sign gave another token: " + got)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s := newSigner(b)
	c := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignLibrary is what Sign cost through golang-jwt, for comparison.
func BenchmarkSignLibrary(b *testing.B) {
	c := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := librarySign(testKey, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := newSigner(b)
	c := sample()
	tok, _ := s.Sign(c)
	at := c.IssuedAt.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok, at); err != nil {
			b.Fatal(err)
		}
	}
}
