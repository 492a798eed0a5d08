package githubhook

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // testing the sha1 header
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestVerifyGitHubVector(t *testing.T) {
	// GitHub's documented example for validating webhook deliveries.
	v, err := NewVerifier([]string{"It's a Secret to Everybody"}, false)
	if err != nil {
		t.Fatal(err)
	}
	err = v.Verify([]byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "")
	if err != nil {
		t.Errorf("GitHub's example signature rejected: %v", err)
	}
}

func TestVerify(t *testing.T) {
	// The predecessor's test secret and body.
	const secret = "make sure you keep this one quiet"
	body := []byte(`{"ref":"refs/heads/master"}`)
	mac1 := hmac.New(sha1.New, []byte(secret))
	mac1.Write(body)
	sha1Hex := hex.EncodeToString(mac1.Sum(nil))
	mac256 := hmac.New(sha256.New, []byte(secret))
	mac256.Write(body)
	sha256Hex := hex.EncodeToString(mac256.Sum(nil))
	other := hmac.New(sha256.New, []byte("another secret"))
	other.Write(body)
	otherHex := hex.EncodeToString(other.Sum(nil))

	tests := []struct {
		name          string
		sig256, sig1  string
		requireSHA256 bool
		want          error
	}{
		{"sha256", "sha256=" + sha256Hex, "", false, nil},
		{"sha256 upper-case hex", "sha256=" + strings.ToUpper(sha256Hex), "", false, nil},
		{"sha1 as the predecessor's tests sent it", "", "sha1 = " + sha1Hex, false, nil},
		{"sha1 plain", "", "sha1=" + sha1Hex, false, nil},
		{"both headers: sha256 decides", "sha256=" + sha256Hex, "sha1=00", false, nil},
		{"both headers: a bad sha256 is not rescued by sha1", "sha256=" + otherHex, "sha1=" + sha1Hex, false, ErrMismatch},
		{"sha1 turned off", "", "sha1=" + sha1Hex, true, ErrSHA1Disabled},
		{"sha1 turned off: a sha256 digest in X-Hub-Signature", "", "sha256=" + sha256Hex, true, ErrSHA1Disabled},
		{"sha1 turned off: no header", "", "", true, ErrNoSignature},
		{"sha1 turned off: sha256 header", "sha256=" + sha256Hex, "sha1=" + sha1Hex, true, nil},
		{"sha256 label on a sha1 digest", "", "sha256=" + sha1Hex, false, ErrMalformed},
		{"sha1 label on a sha256 digest", "", "sha1=" + sha256Hex, false, ErrMalformed},
		{"sha1 label in the sha256 header", "sha1=" + sha1Hex, "", false, ErrUnknownAlgorithm},
		{"unknown algorithm", "", "md5=" + sha1Hex, false, ErrUnknownAlgorithm},
		{"no header", "", "", false, ErrNoSignature},
		{"no equals sign", "sha256" + sha256Hex, "", false, ErrMalformed},
		{"not hex", "sha256=zz" + sha256Hex[2:], "", false, ErrMalformed},
		{"empty digest", "sha256=", "", false, ErrMalformed},
		{"wrong secret", "sha256=" + otherHex, "", false, ErrMismatch},
		{"predecessor's BAD", "", "sha1 = BAD", false, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier([]string{secret}, tt.requireSHA256)
			if err != nil {
				t.Fatal(err)
			}
			err = v.Verify(body, tt.sig256, tt.sig1)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
			// An error never carries the expected digest.
			if err != nil && (strings.Contains(err.Error(), sha256Hex) || strings.Contains(err.Error(), sha1Hex)) {
				t.Errorf("error reveals a digest: %v", err)
			}
		})
	}
}

func TestVerifyRotation(t *testing.T) {
	body := []byte(`{}`)
	oldSig, _ := Sign("old", body)
	newSig, _ := Sign("new", body)
	v, err := NewVerifier([]string{"new", "old"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []string{oldSig, newSig} {
		if err := v.Verify(body, sig, ""); err != nil {
			t.Errorf("rotation: %v", err)
		}
	}
	if _, err := NewVerifier([]string{"", ""}, false); err == nil {
		t.Error("NewVerifier accepted no secret")
	}
}

func TestSignMatchesVerify(t *testing.T) {
	body := []byte(`{"x":1}`)
	sig256, sig1 := Sign("s", body)
	v, _ := NewVerifier([]string{"s"}, false)
	if err := v.Verify(body, sig256, ""); err != nil {
		t.Error(err)
	}
	if err := v.Verify(body, "", sig1); err != nil {
		t.Error(err)
	}
}

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{"sha1=abcd", "sha256 = 00ff", "=", "sha1", "SHA256=AB", " sha1 =  ff "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		algo, digest, err := ParseSignature(header)
		if err != nil {
			return
		}
		if algo != "sha1" && algo != "sha256" || len(digest) == 0 {
			t.Fatalf("ParseSignature(%q) = %q, %x", header, algo, digest)
		}
		// Verify never panics on anything ParseSignature accepts.
		v, _ := NewVerifier([]string{"s"}, false)
		_ = v.Verify([]byte(header), header, header)
		// With sha256 required, X-Hub-Signature alone never passes, even
		// when it carries the right sha256 digest.
		strict, _ := NewVerifier([]string{"s"}, true)
		sig256, _ := Sign("s", []byte(header))
		if strict.Verify([]byte(header), "", header) == nil || strict.Verify([]byte(header), "", sig256) == nil {
			t.Fatalf("X-Hub-Signature %q passed with sha256 required", header)
		}
	})
}
