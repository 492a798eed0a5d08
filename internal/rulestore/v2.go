package rulestore

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/monohook/monohook/internal/rules"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// DefaultV2Prefix is where rule documents of format v2 live: one document
// per rule, NAME.yaml, NAME.yml or NAME.json. They are listed whole (a v2
// rule names its repository inside), apart from the seed layout, which
// the predecessor's tools keep writing.
const DefaultV2Prefix = "monohook/rules"

var v2Name = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// SetV2Prefix changes where v2 documents are read and written.
func (s *Store) SetV2Prefix(p string) { s.v2prefix = strings.Trim(p, "/") }

// V2Prefix is where v2 documents are kept.
func (s *Store) V2Prefix() string { return s.v2prefix }

// V2Key is the key of the v2 rule name with the extension ext (yaml or json).
func (s *Store) V2Key(name, ext string) string { return s.v2prefix + "/" + name + "." + ext }

func isV2Key(key string) bool {
	switch path.Ext(key) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// V2Rules returns every v2 rule: one LIST of the v2 prefix, begun after
// this call (concurrent callers share it), then only new or changed
// documents are read.
func (s *Store) V2Rules(ctx context.Context) (*trigger.V2Set, error) {
	v, err := s.shared(ctx, "\x00v2", func(ctx context.Context) (any, error) { return s.v2Rules(ctx) })
	if err != nil {
		return nil, err
	}
	return v.(*trigger.V2Set), nil
}

func (s *Store) v2Rules(ctx context.Context) (*trigger.V2Set, error) {
	objs, err := s.listDocs(ctx, s.v2prefix+"/", isV2Key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	old := s.v2
	s.mu.Unlock()
	set, oldDocs, ok := old.reuse(objs)
	if ok {
		return set, nil
	}
	docs, fetched, err := refresh(ctx, objs, oldDocs, func(o listed) cachedDoc { return s.loadV2(ctx, o) })
	if err != nil {
		return nil, err
	}
	rs, problems, cacheable := collect(objs, docs)
	set = trigger.NewV2Set(rs, problems)
	s.mu.Lock()
	s.v2 = &cached[*trigger.V2Set]{listed: cacheable, docs: docs, set: set}
	s.mu.Unlock()
	s.log.Debug("v2 rules loaded", "rules", len(rs), "invalid", len(problems), "fetched", fetched)
	return set, nil
}

func (s *Store) loadV2(ctx context.Context, o listed) cachedDoc {
	d := cachedDoc{version: o.version}
	b, err := s.read(ctx, o.key)
	if err != nil {
		d.version = ""
		d.problem = &trigger.Problem{Key: o.key, Error: err.Error()}
		return d
	}
	r, err := CompileV2(o.key, b)
	if err != nil {
		d.problem = &trigger.Problem{Key: o.key, Error: err.Error()}
		return d
	}
	d.rule = &r
	return d
}

// CompileV2 parses and validates a v2 document stored under key; its
// target is validated by its kind.
func CompileV2(key string, b []byte) (trigger.Rule, error) {
	spec, err := trigger.ParseSpec(b)
	if err != nil {
		return trigger.Rule{}, err
	}
	return trigger.NewV2Rule(key, spec, targets.Registry{})
}

// PutV2 validates a v2 document and stores it, as given (comments and
// formatting kept), under the rule's name. The extension follows the
// document: .json when it is JSON, else .yaml. Any other document of the
// same name is removed, so a name is one rule.
func (s *Store) PutV2(ctx context.Context, name string, b []byte) (string, error) {
	if !v2Name.MatchString(name) {
		return "", fmt.Errorf("rule name %q: 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit", name)
	}
	if len(b) > maxDocument {
		return "", fmt.Errorf("rule document larger than %d bytes", maxDocument)
	}
	ext := "yaml"
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "{") {
		ext = "json"
	}
	key := s.V2Key(name, ext)
	if _, err := CompileV2(key, b); err != nil {
		return "", fmt.Errorf("invalid rule: %w", err)
	}
	if err := s.bucket.WriteAll(ctx, key, b, nil); err != nil {
		return "", fmt.Errorf("write %s: %w", key, err)
	}
	for _, other := range []string{"yaml", "yml", "json"} {
		if k := s.V2Key(name, other); k != key {
			if err := s.bucket.Delete(ctx, k); err != nil && !isNotFound(err) {
				return "", fmt.Errorf("remove %s: %w", k, err)
			}
		}
	}
	return key, nil
}

// Raw returns a stored document as written (a v2 rule keeps its comments).
func (s *Store) Raw(ctx context.Context, key string) ([]byte, error) { return s.read(ctx, key) }

// ListV2 reads every v2 document: its rule, or why it is unusable.
func (s *Store) ListV2(ctx context.Context) ([]V2Entry, error) {
	objs, err := s.listDocs(ctx, s.v2prefix+"/", isV2Key)
	if err != nil {
		return nil, err
	}
	keys := keysOf(objs)
	out := make([]V2Entry, len(keys))
	for i, key := range keys {
		out[i].Key = key
		b, err := s.read(ctx, key)
		if err != nil {
			out[i].Problem = err.Error()
			continue
		}
		out[i].Raw = b
		r, err := CompileV2(key, b)
		if err != nil {
			out[i].Problem = err.Error()
			continue
		}
		out[i].Rule = &r
	}
	return out, nil
}

// V2Entry is one stored v2 document as ListV2 reads it.
type V2Entry struct {
	Key     string
	Raw     []byte
	Rule    *trigger.Rule
	Problem string
}

// ConvertSeed writes the v2 rule (YAML) that decides what doc decides: the
// branch as an exact branches filter, the expressions as path_regex, the
// pipeline as a codepipeline target. The document is made by a YAML
// marshaller, never by pasting values into text, so that no value (a
// branch with a newline, a quote, a colon) can add a field of its own.
func ConvertSeed(doc Document, owner string) ([]byte, error) {
	type target struct {
		Type     string `yaml:"type"`
		Pipeline string `yaml:"pipeline"`
	}
	type rule struct {
		Repository string   `yaml:"repository"`
		Events     []string `yaml:"events,flow"`
		Branches   []string `yaml:"branches,flow"`
		PathRegex  []string `yaml:"path_regex"`
		Target     target   `yaml:"target"`
	}
	r := rule{
		Repository: owner + "/" + doc.GitHubRepo,
		Events:     []string{"push"},
		Branches:   []string{escapeGlob(doc.GitHubBranch)},
		PathRegex:  rules.SplitSeed(doc.ChangeMatchExpressions),
		Target:     target{Type: "codepipeline", Pipeline: doc.CodePipelineName},
	}
	body, err := yaml.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	// The comment quotes the names as Go does, so that it stays one line
	// whatever they hold.
	head := fmt.Sprintf("# converted from the seed rule %s@%s → %s\n", strconv.Quote(doc.GitHubRepo), strconv.Quote(doc.GitHubBranch), strconv.Quote(doc.CodePipelineName))
	return append([]byte(head), body...), nil
}

// escapeGlob makes a branch name match itself only.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?+[]\!`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
