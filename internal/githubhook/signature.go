package githubhook

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // GitHub's X-Hub-Signature is HMAC-SHA1; accepting it is the compatibility contract.
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Signature errors. Their text is for logs; the HTTP answer never says which
// one happened, so a caller learns nothing that helps forge a signature.
var (
	ErrNoSignature      = errors.New("no X-Hub-Signature-256 or X-Hub-Signature header")
	ErrMalformed        = errors.New("signature header is not <algorithm>=<hex digest>")
	ErrUnknownAlgorithm = errors.New("signature algorithm is not sha256 or sha1")
	ErrSHA1Disabled     = errors.New("only X-Hub-Signature-256 is read (--require-sha256), and the request has none")
	ErrMismatch         = errors.New("signature does not match the body under any configured secret")
)

// Verifier checks GitHub's HMAC signatures against one or more secrets
// (several during a rotation).
type Verifier struct {
	secrets       [][]byte
	requireSHA256 bool
}

// NewVerifier returns a Verifier for secrets. With requireSHA256, only the
// X-Hub-Signature-256 header is read (and it must be HMAC-SHA256); a
// request with only X-Hub-Signature is refused whatever its label says.
func NewVerifier(secrets []string, requireSHA256 bool) (*Verifier, error) {
	v := &Verifier{requireSHA256: requireSHA256}
	for _, s := range secrets {
		if s != "" {
			v.secrets = append(v.secrets, []byte(s))
		}
	}
	if len(v.secrets) == 0 {
		return nil, errors.New("no webhook secret configured")
	}
	return v, nil
}

// Verify checks body against the signature headers. X-Hub-Signature-256 is
// checked when present; X-Hub-Signature only when it is absent, and never
// with requireSHA256. The label before "=" must name the algorithm of the
// digest, and that algorithm is the one checked.
func (v *Verifier) Verify(body []byte, sig256, sig1 string) error {
	header := sig256
	if header == "" && v.requireSHA256 {
		if sig1 != "" {
			return ErrSHA1Disabled
		}
		return ErrNoSignature
	}
	if header == "" {
		header = sig1
	}
	if header == "" {
		return ErrNoSignature
	}
	algo, digest, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if sig256 != "" && algo != "sha256" {
		return fmt.Errorf("X-Hub-Signature-256 labelled %q: %w", algo, ErrUnknownAlgorithm)
	}
	newHash := sha256.New
	if algo == "sha1" {
		newHash = sha1.New
	}
	if len(digest) != newHash().Size() {
		return fmt.Errorf("%s digest of %d bytes: %w", algo, len(digest), ErrMalformed)
	}
	for _, secret := range v.secrets {
		if hmac.Equal(digest, sum(newHash, secret, body)) {
			return nil
		}
	}
	return ErrMismatch
}

func sum(h func() hash.Hash, secret, body []byte) []byte {
	m := hmac.New(h, secret)
	m.Write(body)
	return m.Sum(nil)
}

// ParseSignature splits "sha256=<hex>" into the lower-case algorithm label
// and the digest. Spaces around "=" are tolerated, as the predecessor did
// ("sha1 = <hex>").
func ParseSignature(header string) (algo string, digest []byte, err error) {
	label, hexDigest, ok := strings.Cut(header, "=")
	if !ok {
		return "", nil, ErrMalformed
	}
	algo = strings.ToLower(strings.TrimSpace(label))
	if algo != "sha256" && algo != "sha1" {
		return "", nil, ErrUnknownAlgorithm
	}
	digest, err = hex.DecodeString(strings.TrimSpace(hexDigest))
	if err != nil || len(digest) == 0 {
		return "", nil, ErrMalformed
	}
	return algo, digest, nil
}

// Sign returns the X-Hub-Signature-256 and X-Hub-Signature values GitHub
// would send for body under secret.
func Sign(secret string, body []byte) (sig256, sig1 string) {
	return "sha256=" + hex.EncodeToString(sum(sha256.New, []byte(secret), body)),
		"sha1=" + hex.EncodeToString(sum(sha1.New, []byte(secret), body))
}
