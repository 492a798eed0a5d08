package githubapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// appTransport authenticates as a GitHub App installation through
// ghinstallation: it signs the App's JWT, trades it for an installation
// token, and reuses that token until shortly before it expires. api is
// the API root, so that GitHub Enterprise Server's tokens come from the
// server itself (ghinstallation's BaseURL has no trailing slash).
func appTransport(base http.RoundTripper, api *url.URL, app, installation int64, pemKey []byte) (http.RoundTripper, error) {
	t, err := ghinstallation.New(base, app, installation, pemKey)
	if err != nil {
		return nil, fmt.Errorf("GitHub App key: %w", err)
	}
	t.BaseURL = strings.TrimSuffix(api.String(), "/")
	return t, nil
}
