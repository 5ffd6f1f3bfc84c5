package hls

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func signedQuery(t *testing.T, s *Signer, class store.ClassID, now time.Time) (exp, sig string) {
	t.Helper()
	u, err := url.Parse(s.URL(class, now))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/hls/" + string(class) + "/index.m3u8"; u.Path != want {
		t.Fatalf("URL path = %q, want %q", u.Path, want)
	}
	return u.Query().Get("exp"), u.Query().Get("sig")
}

func TestExpiryIsEndOfNextHour(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 11, 26, h, m, s, 0, time.UTC) }
	for _, tc := range []struct {
		now, want time.Time
	}{
		{at(11, 0, 0), at(13, 0, 0)},
		{at(11, 41, 13), at(13, 0, 0)},
		{at(11, 59, 59), at(13, 0, 0)},
		{at(23, 30, 0), time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 26, 12, 41, 0, 0, time.FixedZone("CET", 3600)), at(13, 0, 0)},
	} {
		if got := Expiry(tc.now); !got.Equal(tc.want) {
			t.Errorf("Expiry(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

func TestSignerSharesOneURLPerHour(t *testing.T) {
	s := NewSigner(testKey)
	base := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	first := s.URL("c1", base.Add(time.Minute))
	if got := s.URL("c1", base.Add(59*time.Minute)); got != first {
		t.Errorf("URLs within one hour differ:\n%s\n%s", first, got)
	}
	if got := s.URL("c1", base.Add(61*time.Minute)); got == first {
		t.Errorf("URL of the next hour is the same: %s", got)
	}
	if got := s.URL("c2", base.Add(time.Minute)); got == first {
		t.Errorf("two classes share a URL: %s", got)
	}
	if strings.ContainsAny(first[strings.Index(first, "sig=")+4:], "+/=") {
		t.Errorf("sig is not unpadded base64url: %s", first)
	}
}

func TestSignerVerify(t *testing.T) {
	s := NewSigner(testKey)
	now := time.Date(2026, 11, 26, 11, 41, 0, 0, time.UTC)
	exp, sig := signedQuery(t, s, "c1", now)
	if err := s.Verify("c1", exp, sig, now); err != nil {
		t.Fatalf("Verify of a fresh URL: %v", err)
	}
	if err := s.Verify("c1", exp, sig, now.Add(78*time.Minute)); err != nil {
		t.Fatalf("Verify a minute before expiry: %v", err)
	}
	otherExp, otherSig := signedQuery(t, s, "c1", now.Add(time.Hour))
	flipped := []byte(sig)
	flipped[0] ^= 1
	for _, tc := range []struct {
		name       string
		class      store.ClassID
		exp, sig   string
		now        time.Time
		wantInText string
	}{
		{"expired", "c1", exp, sig, now.Add(79 * time.Minute), "expired"},
		{"wrong class", "c2", exp, sig, now, "does not sign"},
		{"exp changed", "c1", otherExp, sig, now, "does not sign"},
		{"sig of another exp", "c1", exp, otherSig, now, "does not sign"},
		{"sig altered", "c1", exp, string(flipped), now, ""},
		{"no exp", "c1", "", sig, now, "required"},
		{"no sig", "c1", exp, "", now, "required"},
		{"exp not a number", "c1", "soon", sig, now, "unix time"},
		{"exp with sign", "c1", "+" + exp, sig, now, "unix time"},
		{"exp with leading zero", "c1", "0" + exp, sig, now, "unix time"},
		{"sig not base64url", "c1", exp, "a+b/c==", now, "malformed"},
		{"sig truncated", "c1", exp, sig[:20], now, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Verify(tc.class, tc.exp, tc.sig, tc.now)
			if !apperr.Is(err, apperr.Forbidden) {
				t.Fatalf("Verify = %v, want a Forbidden error", err)
			}
			if !strings.Contains(err.Error(), tc.wantInText) {
				t.Errorf("Verify = %q, want it to say %q", err, tc.wantInText)
			}
		})
	}
	if err := NewSigner([]byte("another key of thirty-two bytes!")).Verify("c1", exp, sig, now); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("another key's Verify = %v, want Forbidden", err)
	}
	empty := NewSigner(nil)
	e, g := signedQuery(t, empty, "c1", now)
	if err := empty.Verify("c1", e, g, now); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("a signer without a key accepted its own URL: %v", err)
	}
}

func BenchmarkSignerVerify(b *testing.B) {
	s := NewSigner(testKey)
	now := time.Date(2026, 11, 26, 11, 41, 0, 0, time.UTC)
	u, _ := url.Parse(s.URL("0b5a4f0e-6d0c-4f4e-9a53-2f6c1f1d1e10", now))
	exp, sig := u.Query().Get("exp"), u.Query().Get("sig")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify("0b5a4f0e-6d0c-4f4e-9a53-2f6c1f1d1e10", exp, sig, now); err != nil {
			b.Fatal(err)
		}
	}
}
