package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ReportSpec is a v2 rule's report field: the name of its GitHub check
// (default monohook/<target name>), or disabled: no check at all. (Not
// "off": YAML reads that word as false.)
type ReportSpec struct {
	Name     string `json:"name,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// maxCheckName bounds a check's name (GitHub's limit of a commit status
// context is 255 characters; shorter names read better in its lists).
const maxCheckName = 100

func (r *ReportSpec) validate() error {
	switch {
	case r == nil:
		return nil
	case r.Disabled && r.Name != "":
		return errors.New("report: name and disabled: give one or the other")
	case len(r.Name) > maxCheckName:
		return fmt.Errorf("report.name: %d characters, at most %d", len(r.Name), maxCheckName)
	case strings.ContainsFunc(r.Name, unicode.IsControl):
		return fmt.Errorf("report.name %q has a control character", r.Name)
	case r.Name != "" && strings.TrimSpace(r.Name) != r.Name:
		return fmt.Errorf("report.name %q starts or ends with a space", r.Name)
	}
	return nil
}

// DefaultCheckName is the check of a rule that names none: monohook/ and
// its target's name. Everyone who can read the repository sees a check's
// name, so a name holding a URL (an http target's) keeps its scheme and
// host only, with a digest of the whole to tell two URLs of one host
// apart: its path may hold a secret (a chat webhook's token), and its
// user information one. A name past maxCheckName is cut, with the digest.
func DefaultCheckName(pipeline string) string {
	name := pipeline
	sum := sha256.Sum256([]byte(pipeline))
	digest := hex.EncodeToString(sum[:4])
	if scheme, rest, ok := strings.Cut(name, "://"); ok {
		host, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		name = scheme + "://" + host + "/…" + digest
	}
	if len(name) > maxCheckName {
		n := maxCheckName - len(digest) - len("…")
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name = name[:n] + "…" + digest
	}
	return "monohook/" + name
}

// CheckName is the name of the check reporting r; "" when its report is
// off.
func (r *Rule) CheckName() string {
	if r.V2 != nil && r.V2.Spec.Report != nil {
		if r.V2.Spec.Report.Disabled {
			return ""
		}
		if r.V2.Spec.Report.Name != "" {
			return r.V2.Spec.Report.Name
		}
	}
	return DefaultCheckName(r.Pipeline)
}

// reported completes res, an Explain result, for reporting: each
// decision gets its check's name; unless explain, the unmatched ones move
// to Unselected, where the v2 rules of the repository whose filters leave
// p out are added, saying why.
func reported(res *Result, p *Push, r Rules, explain bool) {
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if rule := r.V2.rule(d.Rule); rule != nil {
			d.Check = rule.CheckName()
		} else {
			d.Check = DefaultCheckName(d.Pipeline) // a seed rule
		}
	}
	if !explain {
		matched := res.Decisions[:0:0]
		for _, d := range res.Decisions {
			if d.Matched {
				matched = append(matched, d)
			} else {
				res.Unselected = append(res.Unselected, d)
			}
		}
		res.Decisions = matched
	}
	if p.Deleted || r.V2 == nil {
		return
	}
	for i := range r.V2.Rules {
		rule := &r.V2.Rules[i]
		if !strings.EqualFold(rule.Repo, p.FullName) {
			continue
		}
		if ok, why := rule.V2.refMatches(p); !ok {
			d := Decision{Rule: rule.Key, Pipeline: rule.Pipeline, Reason: why, Check: rule.CheckName()}
			if explain {
				res.Decisions = append(res.Decisions, d)
			} else {
				res.Unselected = append(res.Unselected, d)
			}
		}
	}
}

// rule is the v2 rule stored under key, or nil.
func (s *V2Set) rule(key string) *Rule {
	if s == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(s.Rules, key, func(r Rule, key string) int { return strings.Compare(r.Key, key) })
	if !ok {
		return nil
	}
	return &s.Rules[i]
}
