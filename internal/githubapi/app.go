package githubapi

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// appTransport authenticates as a GitHub App installation: it signs a
// JWT with the App's key, trades it for an installation token, and uses
// that token until shortly before it expires.
type appTransport struct {
	base         http.RoundTripper
	api          *url.URL
	app          int64
	installation int64
	key          *rsa.PrivateKey

	mu      sync.Mutex
	token   string
	expires time.Time
}

func newAppTransport(base http.RoundTripper, api *url.URL, app, installation int64, pemKey []byte) (*appTransport, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, errors.New("GitHub App key: not PEM")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k8, err8 := x509.ParsePKCS8PrivateKey(block.Bytes); err8 == nil {
		var ok bool
		if key, ok = k8.(*rsa.PrivateKey); !ok {
			return nil, errors.New("GitHub App key: not an RSA key")
		}
	} else {
		return nil, fmt.Errorf("GitHub App key: %w", err)
	}
	return &appTransport{base: base, api: api, app: app, installation: installation, key: key}, nil
}

func (t *appTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.installationToken(req)
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "token "+tok)
	return t.base.RoundTrip(r)
}

func (t *appTransport) installationToken(req *http.Request) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && time.Until(t.expires) > 5*time.Minute {
		return t.token, nil
	}
	jwt, err := t.jwt(time.Now())
	if err != nil {
		return "", err
	}
	u := t.api.JoinPath("app", "installations", strconv.FormatInt(t.installation, 10), "access_tokens")
	r, err := http.NewRequestWithContext(req.Context(), http.MethodPost, u.String(), nil)
	if err != nil {
		return "", err
	}
	r.Header.Set("Authorization", "Bearer "+jwt)
	r.Header.Set("Accept", "application/vnd.github+json")
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return "", fmt.Errorf("GitHub App installation token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("GitHub App installation token: %s", resp.Status)
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("GitHub App installation token: unreadable answer: %w", err)
	}
	if out.Token == "" {
		return "", errors.New("GitHub App installation token: the answer holds no token")
	}
	t.token, t.expires = out.Token, out.ExpiresAt
	return t.token, nil
}

// jwt is the App's JSON Web Token (RS256): issued a minute in the past
// against clock drift, valid 9 minutes (GitHub allows 10).
func (t *appTransport) jwt(now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]int64{"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(9 * time.Minute).Unix(), "iss": t.app})
	signing := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, t.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign GitHub App JWT: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}
