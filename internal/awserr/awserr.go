// Package awserr classifies the errors of AWS API calls for the targets
// that make them: which a retry would only repeat (permanent), and which
// may pass (throttling, 5xx, the network). It is the one place that knows
// AWS's error codes common to every service.
package awserr

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/monohook/monohook/internal/trigger"
)

// authCodes are the answers of an AWS API to credentials it does not
// accept, or to a caller it does not let do the call. Retrying with the
// same credentials only repeats them, so a start fails for good at once
// with a reason a person can act on, rather than retrying for minutes.
var authCodes = map[string]bool{
	"AccessDeniedException":       true,
	"AccessDenied":                true,
	"UnrecognizedClientException": true,
	"InvalidClientTokenId":        true,
	"InvalidSignatureException":   true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"MissingAuthenticationToken":  true,
	"NotAuthorized":               true,
	"AuthFailure":                 true,
	"OptInRequired":               true,
}

// Classify wraps err, the error of the call what (e.g. "start pipeline
// api"), leading with the AWS error code where there is one (it is what a
// person searches for; the SDK's error names the operation). Authentication and authorization errors, and the
// service's own codes listed in permanent (no such pipeline, invalid
// input), are marked trigger.ErrPermanent; everything else is left to be
// retried.
func Classify(err error, what string, permanent ...string) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", what, err)
	}
	code := ae.ErrorCode()
	if authCodes[code] {
		return fmt.Errorf("%s (%w): AWS refused the credentials or the permission to %s; check the role or keys monohook runs with: %w", code, trigger.ErrPermanent, what, err)
	}
	for _, c := range permanent {
		if c == code {
			return fmt.Errorf("%s (%w): %w", code, trigger.ErrPermanent, err)
		}
	}
	return fmt.Errorf("%s: %w", code, err)
}
