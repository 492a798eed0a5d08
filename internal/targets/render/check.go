package render

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// variableName is what a variable of a codepipeline or codebuild target
// may be called.
var variableName = regexp.MustCompile(`^[A-Za-z0-9@\-_]{1,128}$`)

// Check is the validation of one target's fields when its rule is
// written: each failure is kept, named after its field (target.FIELD),
// and Err joins them.
//
// A template is checked as it is before every rendering (what could make
// its work unbounded is refused) and run once against empty data, so a
// misspelt field ({{.Sha}}) is refused when the rule is written, not when
// it fires.
type Check struct {
	ctx    context.Context
	cancel context.CancelFunc
	secret func(string) (string, error)
	errs   []error
}

// NewCheck begins the check of one target. Only http targets may use
// {{secret}} (secrets): the others would show a secret in a pipeline
// variable, a command line or a workflow input.
func NewCheck(secrets bool) *Check {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c := &Check{ctx: ctx, cancel: cancel, secret: func(string) (string, error) {
		return "", errors.New("secrets are only available to http targets")
	}}
	if secrets {
		c.secret = func(string) (string, error) { return "", nil }
	}
	return c
}

// Failf records a failure; the message begins with the field's name.
func (c *Check) Failf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("target."+format, args...))
}

// Template checks a template of at most MaxValue bytes.
func (c *Check) Template(field, text string) { c.render(field, text, false, MaxValue) }

// Body checks a template of at most MaxBody bytes.
func (c *Check) Body(field, text string) { c.render(field, text, false, MaxBody) }

// URL checks a URL template; it returns the URL rendered with empty data
// (the scheme and host are the template's own) and whether it passed.
func (c *Check) URL(field, text string) (string, bool) { return c.render(field, text, true, MaxValue) }

// Variables checks a target's variables: their names, and their values
// as templates.
func (c *Check) Variables(vars map[string]string) {
	for k, v := range vars {
		if !variableName.MatchString(k) {
			c.Failf("variables: %q is not a valid variable name", k)
		}
		c.Template("variables."+k, v)
	}
}

func (c *Check) render(field, text string, isURL bool, limit int) (string, bool) {
	out, err := render(c.ctx, field, text, isURL, limit, trigger.TemplateData{}, c.secret)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("target.%w", err)) // err names the field
	}
	return out, err == nil
}

// Err ends the check: every failure recorded, joined, or nil.
func (c *Check) Err() error {
	c.cancel()
	return errors.Join(c.errs...)
}
