package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// User change kinds passed to Options.OnUserChange; they match Amplify's
// onCreate / onUpdate / onDelete subscriptions.
const (
	UserCreated = "create"
	UserUpdated = "update"
	UserDeleted = "delete"
)

// Options configures a Service. The zero value works except for Key,
// which should be set (see Key).
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SessionTTL is how long a sign-in lasts. Default 7 days.
	SessionTTL time.Duration
	// SignupEnabled lets anyone create a STUDENT account.
	SignupEnabled bool
	// Logger receives sign-in failures and internal errors; discarded when nil.
	Logger *slog.Logger
	// Key is the server secret that CSRF tokens are derived from, at least
	// 32 bytes. Every node of a deployment needs the same key. When it is
	// shorter, a random key is made and CSRF tokens die with the process.
	Key []byte
	// PublicURL is the server's public base URL; when it is https, the
	// session cookie is always Secure.
	PublicURL string
	// TrustProxy makes the rightmost X-Forwarded-For address the client's
	// address for rate limiting. Set it only behind a reverse proxy that
	// sets the header, or clients could pick their own address.
	TrustProxy bool
	// Limits bound sign-in attempts.
	Limits RateLimits
	// HashParams are argon2id's costs for new hashes; DefaultHashParams
	// when zero. Existing hashes keep the parameters they were made with.
	HashParams HashParams
	// MaxConcurrentHashes bounds password hashes running at once, so that
	// a burst of sign-ins queues instead of taking memory without limit
	// (each hash holds HashParams.Memory). Default GOMAXPROCS.
	MaxConcurrentHashes int
	// OnUserChange, when set, is called after a user is created, changed
	// or deleted (kind is UserCreated, UserUpdated or UserDeleted; the
	// user carries no password hash). It must not block. The wiring
	// connects it to the subscription broker.
	OnUserChange func(kind string, u store.User)
	// NewID makes user IDs; random UUIDs when nil.
	NewID func() string
}

// Service is liveclass's account system: it signs users up and in, checks
// session tokens, and holds the rules on who may read or change accounts.
type Service struct {
	st        store.Store
	now       func() time.Time
	ttl       time.Duration
	signup    bool
	log       *slog.Logger
	key       []byte
	publicTLS bool
	trustXFF  bool
	params    HashParams
	hashSem   chan struct{}
	acct      *limiter // failures per account
	addr      *limiter // attempts per address
	onChange  func(string, store.User)
	newID     func() string

	dummyOnce sync.Once
	dummyHash string

	randomKey bool      // Options.Key was missing or short
	keyWarn   sync.Once // warn about it on first use, not in CLI runs that never need it
}

// Session is a sign-in: the bearer token (shown once; only its hash is
// stored), when it expires, and who it belongs to.
type Session struct {
	Token     string
	ExpiresAt time.Time
	User      store.User
}

// New returns a Service over st.
func New(st store.Store, opt Options) *Service {
	s := &Service{
		st:        st,
		now:       opt.Now,
		ttl:       opt.SessionTTL,
		signup:    opt.SignupEnabled,
		log:       opt.Logger,
		key:       append([]byte(nil), opt.Key...),
		publicTLS: strings.HasPrefix(strings.ToLower(opt.PublicURL), "https://"),
		trustXFF:  opt.TrustProxy,
		params:    opt.HashParams,
		onChange:  opt.OnUserChange,
		newID:     opt.NewID,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = 7 * 24 * time.Hour
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if len(s.key) < 32 {
		s.key = make([]byte, 32)
		if _, err := rand.Read(s.key); err != nil {
			panic("auth: no randomness for the CSRF key: " + err.Error())
		}
		s.randomKey = true
	}
	if s.params == (HashParams{}) {
		s.params = DefaultHashParams()
	}
	n := opt.MaxConcurrentHashes
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.hashSem = make(chan struct{}, n)
	l := opt.Limits.withDefaults()
	s.acct = newLimiter(l.AccountFailures, l.AccountWindow, l.MaxKeys)
	s.addr = newLimiter(l.AddressAttempts, l.AddressWindow, l.MaxKeys)
	if s.newID == nil {
		s.newID = newUUID
	}
	return s
}

// badCredentials is the one answer to a wrong password and an unknown
// email alike, so that sign-in does not reveal who has an account.
func badCredentials() error {
	return apperr.New(apperr.Unauthenticated, "invalid email or password")
}

// Signup creates a STUDENT account when self sign-up is enabled. It does
// not sign the user in; call NewSession for that.
func (s *Service) Signup(ctx context.Context, email, password, name string) (store.User, error) {
	if !s.signup {
		return store.User{}, apperr.New(apperr.Forbidden, "sign-up is disabled")
	}
	return s.createUser(ctx, "", email, name, password, store.RoleStudent, false)
}

// LimitAddress counts one attempt from remoteAddr against the per-address
// limit and fails with TooMany when it is used up. Login counts its own;
// the sign-up handlers call this before Signup.
func (s *Service) LimitAddress(remoteAddr string) error {
	if d := s.addr.take(addressKey(remoteAddr), s.now()); d > 0 {
		return tooMany("attempts from this address", d)
	}
	return nil
}

// Login checks an email and password and starts a session. A wrong
// password and an unknown email give the same error after about the same
// time. Attempts are limited per address and failures per account.
func (s *Service) Login(ctx context.Context, email, password, remoteAddr string) (Session, error) {
	now := s.now()
	if err := s.LimitAddress(remoteAddr); err != nil {
		s.log.Info("auth: sign-in refused by address limit", "addr", remoteAddr)
		return Session{}, err
	}
	acct := accountKey(email)
	if d := s.acct.wait(acct, now); d > 0 {
		s.log.Info("auth: sign-in refused by account limit", "addr", remoteAddr)
		return Session{}, tooMany("failed sign-ins for this account", d)
	}
	u, err := s.st.UserByEmail(ctx, acct)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return Session{}, fmt.Errorf("auth: looking up account: %w", err)
	}
	ok := false
	if err == nil && u.PasswordHash != "" {
		if ok, err = s.verify(ctx, password, u.PasswordHash); err != nil {
			return Session{}, err
		}
	} else {
		// Spend the same time as a real check, so that the response time
		// does not tell whether the account exists.
		dummy, err := s.dummy()
		if err != nil {
			return Session{}, err
		}
		if _, err := s.verify(ctx, password, dummy); err != nil {
			return Session{}, err
		}
	}
	if !ok {
		s.acct.record(acct, now)
		s.log.Info("auth: sign-in failed", "addr", remoteAddr)
		return Session{}, badCredentials()
	}
	s.acct.reset(acct)
	return s.NewSession(ctx, u)
}

// NewSession starts a session for u without a password check: for sign-up
// and, later, single sign-on, after the caller has established who u is.
func (s *Service) NewSession(ctx context.Context, u store.User) (Session, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Session{}, fmt.Errorf("auth: making session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now().UTC()
	sess := store.Session{TokenHash: hashToken(token), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.ttl)}
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return Session{}, fmt.Errorf("auth: storing session: %w", err)
	}
	return Session{Token: token, ExpiresAt: sess.ExpiresAt, User: public(u)}, nil
}

// Logout ends the session of token. An unknown token is not an error:
// the session is gone either way.
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	err := s.st.DeleteSession(ctx, hashToken(token))
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return fmt.Errorf("auth: deleting session: %w", err)
	}
	return nil
}

// Authenticate returns the actor whose session token this is. Unknown and
// expired tokens are Unauthenticated. It runs on every API call, so it
// costs one SHA-256 and one indexed read of the session with its user;
// reading the user each time is also what makes a role change take effect
// at once.
func (s *Service) Authenticate(ctx context.Context, token string) (Actor, error) {
	if token == "" || len(token) > 128 {
		return Actor{}, apperr.New(apperr.Unauthenticated, "invalid or expired session")
	}
	hash := hashToken(token)
	sess, u, err := s.st.SessionUserByHash(ctx, hash)
	if apperr.Is(err, apperr.NotFound) {
		return Actor{}, apperr.New(apperr.Unauthenticated, "invalid or expired session")
	}
	if err != nil {
		return Actor{}, fmt.Errorf("auth: reading session: %w", err)
	}
	if !s.now().Before(sess.ExpiresAt) {
		// Drop it now rather than wait for the sweep; failing to is harmless.
		if err := s.st.DeleteSession(ctx, hash); err != nil && !apperr.Is(err, apperr.NotFound) {
			s.log.Warn("auth: deleting expired session", "err", err)
		}
		return Actor{}, apperr.New(apperr.Unauthenticated, "session expired; sign in again")
	}
	return Actor{UserID: u.ID, Role: u.Role, Name: u.Name}, nil
}

// DeleteExpiredSessions removes sessions past their expiry; the server
// runs it now and then so that the table does not grow forever.
func (s *Service) DeleteExpiredSessions(ctx context.Context) error {
	return s.st.DeleteExpiredSessions(ctx, s.now())
}

// AddUser creates an account with any role (the CLI's `user add`). An
// empty password makes an account that cannot sign in with a password
// until ResetPassword gives it one.
func (s *Service) AddUser(ctx context.Context, email, name, password string, role store.Role) (store.User, error) {
	return s.createUser(ctx, "", email, name, password, role, true)
}

// SetRole changes the role of the account with email.
func (s *Service) SetRole(ctx context.Context, email string, role store.Role) error {
	if !role.Valid() {
		return apperr.Field("role", "must be ADMIN, MENTOR or STUDENT")
	}
	u, err := s.userByEmail(ctx, email)
	if err != nil {
		return err
	}
	u.Role = role
	u.UpdatedAt = s.now().UTC()
	if err := s.st.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("auth: updating role: %w", err)
	}
	s.changed(UserUpdated, u)
	return nil
}

// ResetPassword gives the account with email a new password and signs it
// out everywhere: a reset is what one does after a password leaked.
func (s *Service) ResetPassword(ctx context.Context, email, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	u, err := s.userByEmail(ctx, email)
	if err != nil {
		return err
	}
	if u.PasswordHash, err = s.hash(ctx, password); err != nil {
		return err
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.st.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("auth: updating password: %w", err)
	}
	if err := s.st.DeleteUserSessions(ctx, u.ID); err != nil {
		return fmt.Errorf("auth: ending sessions after a password reset: %w", err)
	}
	s.acct.reset(accountKey(u.Email))
	return nil
}

// EnsureAdmin makes sure an ADMIN exists, so that a new installation can
// be signed into. When one exists it does nothing. Otherwise it creates
// an ADMIN with email and password, generating a strong password when
// password is empty (returned once for the caller to print; it is not
// stored anywhere else). When an account with email exists already, it is
// promoted to ADMIN and, if password is given, gets that password.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (created bool, generatedPassword string, err error) {
	exists, err := s.adminExists(ctx)
	if err != nil || exists {
		return false, "", err
	}
	if strings.TrimSpace(email) == "" {
		return false, "", apperr.Field("email", "is required to create the first admin")
	}
	if u, err := s.userByEmail(ctx, email); err == nil {
		if password != "" {
			if err := s.ResetPassword(ctx, u.Email, password); err != nil {
				return false, "", err
			}
		}
		return false, "", s.SetRole(ctx, u.Email, store.RoleAdmin)
	} else if !apperr.Is(err, apperr.NotFound) {
		return false, "", err
	}
	if password == "" {
		raw := make([]byte, 18)
		if _, err := rand.Read(raw); err != nil {
			return false, "", fmt.Errorf("auth: generating password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(raw) // 24 characters, 144 bits
		generatedPassword = password
	}
	if _, err := s.createUser(ctx, "", email, "Administrator", password, store.RoleAdmin, true); err != nil {
		// Another node starting at the same moment may have made it.
		if apperr.Is(err, apperr.Conflict) {
			if exists, xerr := s.adminExists(ctx); xerr == nil && exists {
				return false, "", nil
			}
		}
		return false, "", err
	}
	return true, generatedPassword, nil
}

// adminExists asks the store for one ADMIN; a store whose user filter does
// not know the role field is scanned page by page instead.
func (s *Service) adminExists(ctx context.Context) (bool, error) {
	f := &store.Filter{Conds: []store.Cond{{Field: "role", Op: store.OpEq, Values: []any{string(store.RoleAdmin)}}}}
	l, err := s.st.ListUsers(ctx, store.UserQuery{Filter: f, Page: store.Page{Limit: 1}})
	if err == nil {
		for _, u := range l.Items {
			if u.Role == store.RoleAdmin {
				return true, nil
			}
		}
		if l.Next == "" {
			return false, nil
		}
	} else if !apperr.Is(err, apperr.Invalid) {
		return false, fmt.Errorf("auth: looking for an admin: %w", err)
	}
	q := store.UserQuery{Page: store.Page{Limit: 100}}
	for {
		l, err := s.st.ListUsers(ctx, q)
		if err != nil {
			return false, fmt.Errorf("auth: looking for an admin: %w", err)
		}
		for _, u := range l.Items {
			if u.Role == store.RoleAdmin {
				return true, nil
			}
		}
		if l.Next == "" {
			return false, nil
		}
		q.Page.After = l.Next
	}
}

// createUser validates and stores a new account. Sign-up requires a
// password; admin paths may leave it empty.
func (s *Service) createUser(ctx context.Context, id store.UserID, email, name, password string, role store.Role, passwordOptional bool) (store.User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return store.User{}, err
	}
	if name, err = validateName(name); err != nil {
		return store.User{}, err
	}
	if !role.Valid() {
		return store.User{}, apperr.Field("role", "must be ADMIN, MENTOR or STUDENT")
	}
	var hash string
	if password != "" || !passwordOptional {
		if err := ValidatePassword(password); err != nil {
			return store.User{}, err
		}
		if hash, err = s.hash(ctx, password); err != nil {
			return store.User{}, err
		}
	}
	if id == "" {
		id = store.UserID(s.newID())
	}
	now := s.now().UTC()
	u := store.User{ID: id, Email: email, Name: name, Role: role, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.st.CreateUser(ctx, &u); err != nil {
		if apperr.Is(err, apperr.Conflict) {
			if apperr.FieldOf(err) == "id" {
				return store.User{}, err
			}
			return store.User{}, &apperr.Error{Kind: apperr.Conflict, Field: "email", Message: "an account with this email already exists"}
		}
		return store.User{}, fmt.Errorf("auth: creating user: %w", err)
	}
	s.changed(UserCreated, u)
	return public(u), nil
}

func (s *Service) userByEmail(ctx context.Context, email string) (store.User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.st.UserByEmail(ctx, e)
	if apperr.Is(err, apperr.NotFound) {
		return store.User{}, apperr.New(apperr.NotFound, "no account with email %s", e)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("auth: looking up account: %w", err)
	}
	return u, nil
}

// hash runs argon2id under the concurrency bound.
func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return HashPassword(pw, s.params)
}

func (s *Service) verify(ctx context.Context, pw, encoded string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.release()
	ok, err := VerifyPassword(pw, encoded)
	if err != nil {
		return false, fmt.Errorf("auth: checking password: %w", err)
	}
	return ok, nil
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.hashSem }

// dummy returns a hash of a random password made with the current
// parameters, for timing-equal checks of unknown accounts.
func (s *Service) dummy() (string, error) {
	var err error
	s.dummyOnce.Do(func() {
		raw := make([]byte, 16)
		if _, err = rand.Read(raw); err != nil {
			return
		}
		s.dummyHash, err = HashPassword(hex.EncodeToString(raw), s.params)
	})
	if err == nil && s.dummyHash == "" {
		err = errors.New("auth: no dummy hash")
	}
	return s.dummyHash, err
}

func (s *Service) changed(kind string, u store.User) {
	if s.onChange != nil {
		s.onChange(kind, public(u))
	}
}

// public strips the password hash, so that a user record handed out of
// this package can be logged or serialised without leaking it.
func public(u store.User) store.User {
	u.PasswordHash = ""
	return u
}

// hashToken is what the store keeps instead of the session token: a leaked
// database then holds no token that signs anyone in.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NormalizeEmail checks that email is a plain address (no display name)
// and returns it trimmed and lower-cased, the form the store keeps.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", apperr.Field("email", "is required")
	}
	if len(e) > 254 {
		return "", apperr.Field("email", "must be at most 254 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", apperr.Field("email", "is not a valid email address")
	}
	local, domain, _ := strings.Cut(e, "@")
	if local == "" || domain == "" || strings.HasPrefix(domain, "[") {
		return "", apperr.Field("email", "is not a valid email address")
	}
	return e, nil
}

// accountKey is the per-account rate-limit key: the normalized email even
// when it names no account, so that unknown and known emails behave alike.
func accountKey(email string) string {
	e := strings.ToLower(strings.TrimSpace(email))
	if len(e) > 254 {
		e = e[:254]
	}
	return e
}

func validateName(name string) (string, error) {
	n := strings.TrimSpace(name)
	switch c := utf8.RuneCountInString(n); {
	case !utf8.ValidString(n):
		return "", apperr.Field("name", "must be valid UTF-8 text")
	case c == 0:
		return "", apperr.Field("name", "is required")
	case c > 100:
		return "", apperr.Field("name", "must be at most 100 characters")
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", apperr.Field("name", "must not contain control characters")
		}
	}
	return n, nil
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
