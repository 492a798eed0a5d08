package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	sessionCookie = "monohook_session"
	sessionTTL    = 12 * time.Hour
)

// SessionStore keeps the dashboard's sessions where every replica sees
// them (the database), so that logging out ends a session everywhere. It
// is given only keyed hashes of session ids.
type SessionStore interface {
	CreateSession(ctx context.Context, hash string, expires time.Time) error
	// SessionOpen reports whether hash is stored and has not ended by now.
	SessionOpen(ctx context.Context, hash string, now time.Time) (bool, error)
	DeleteSession(ctx context.Context, hash string) error
}

// sessions issues and checks session cookies and CSRF tokens. A session
// id is random; the store knows it by an HMAC keyed with a key derived
// from the admin token, so changing the token ends every session (their
// hashes no longer match), and a copy of the table opens none.
type sessions struct {
	token [32]byte // SHA-256 of the admin token: compared in constant time whatever its length
	key   []byte
	store SessionStore
}

func newSessions(adminToken string, store SessionStore) *sessions {
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("monohook session key v2"))
	return &sessions{token: sha256.Sum256([]byte(adminToken)), key: mac.Sum(nil), store: store}
}

// tokenOK compares a submitted token with the admin token in constant time.
func (s *sessions) tokenOK(submitted string) bool {
	sum := sha256.Sum256([]byte(submitted))
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

func (s *sessions) sign(parts ...string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(mac.Sum(nil))
}

// issue stores a new session and returns its id, the cookie's value.
func (s *sessions) issue(ctx context.Context, now time.Time) (string, error) {
	id := make([]byte, 32)
	_, _ = rand.Read(id) // crypto/rand.Read never fails (Go 1.24+)
	v := hex.EncodeToString(id)
	if err := s.store.CreateSession(ctx, s.sign("session", v), now.Add(sessionTTL)); err != nil {
		return "", err
	}
	return v, nil
}

// open reports whether a cookie value is a session that is stored and
// has not ended. Anything not shaped like an id is refused without asking
// the store.
func (s *sessions) open(ctx context.Context, v string, now time.Time) (bool, error) {
	if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
		return false, nil
	}
	return s.store.SessionOpen(ctx, s.sign("session", v), now)
}

// end deletes a session from the store.
func (s *sessions) end(ctx context.Context, v string) error {
	return s.store.DeleteSession(ctx, s.sign("session", v))
}

// csrf is the CSRF token of a session: forms carry it, and a POST without
// it is refused. Another site can make a browser send the cookie, but it
// cannot read the token.
func (s *sessions) csrf(session string) string { return s.sign("csrf", session) }

func (s *sessions) csrfOK(session, submitted string) bool {
	return submitted != "" && hmac.Equal([]byte(submitted), []byte(s.csrf(session)))
}

// sessionOf returns the request's open session, or "".
func (s *sessions) sessionOf(r *http.Request) (string, error) {
	var v string
	if c, err := r.Cookie(sessionCookie); err == nil {
		v = c.Value
	}
	ok, err := s.open(r.Context(), v, time.Now())
	if err != nil || !ok {
		return "", err
	}
	return v, nil
}

func setSession(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   behindTLS(r),
	})
}

// behindTLS reports whether the browser reached us over HTTPS, directly or
// through a proxy that terminates TLS. Trusting the proxy header here can
// only make the cookie stricter.
func behindTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// sameOrigin refuses a POST that a browser says came from another site.
// Browsers send Origin on every POST; a client that sends none (curl) is
// not a browser another site can drive, and the CSRF token still applies.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
