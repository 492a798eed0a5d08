package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	sessionCookie = "monohook_session"
	sessionTTL    = 12 * time.Hour
)

// sessions signs and checks session cookies and CSRF tokens. Both are
// derived from the admin token, so every replica given the same token
// accepts the same sessions without sharing state, and changing the token
// ends every session.
type sessions struct {
	token [32]byte // SHA-256 of the admin token: compared in constant time whatever its length
	key   []byte
}

func newSessions(adminToken string) *sessions {
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("monohook session key v1"))
	return &sessions{token: sha256.Sum256([]byte(adminToken)), key: mac.Sum(nil)}
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

// issue returns a new session's cookie value: expiry, nonce and MAC.
func (s *sessions) issue(now time.Time) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	exp := strconv.FormatInt(now.Add(sessionTTL).Unix(), 10)
	n := hex.EncodeToString(nonce)
	return exp + "." + n + "." + s.sign("session", exp, n)
}

// valid reports whether a cookie value is a session this key issued that
// has not expired.
func (s *sessions) valid(v string, now time.Time) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || now.Unix() >= exp {
		return false
	}
	return hmac.Equal([]byte(parts[2]), []byte(s.sign("session", parts[0], parts[1])))
}

// csrf is the CSRF token of a session: forms carry it, and a POST without
// it is refused. Another site can make a browser send the cookie, but it
// cannot read the token.
func (s *sessions) csrf(session string) string { return s.sign("csrf", session) }

func (s *sessions) csrfOK(session, submitted string) bool {
	return submitted != "" && hmac.Equal([]byte(submitted), []byte(s.csrf(session)))
}

// sessionOf returns the request's valid session cookie value, or "".
func (s *sessions) sessionOf(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !s.valid(c.Value, time.Now()) {
		return ""
	}
	return c.Value
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
