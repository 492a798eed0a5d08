// Package render holds target templates: the checks a template passes
// when its rule is written (Check), and its rendering when a start runs,
// bounded in output, work and time (Text, URL, Map). Every kind of target
// renders its templates here, against what the domain shows of a push
// (trigger.TemplateData).
package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/monohook/monohook/internal/trigger"
)

// Limits of one rendering of a target template. text/template cannot be
// interrupted, so a template's work is bounded by construction (see
// checkNode) and by these budgets, which every write, function result and
// range iteration is counted against, together with the job's deadline.
const (
	// MaxBody bounds an http target's body.
	MaxBody = 1 << 20
	// MaxValue bounds every other template: a URL, a header, a variable,
	// an input, a ref, a command argument.
	MaxValue = 16 << 10
	// maxIterations bounds the iterations of range in one rendering.
	maxIterations = 10000
)

// templateFuncs are the functions a target template may call: ours, and
// the builtins that cannot do much work. call and the like are refused;
// print, printf, println, html, js, urlquery and json are replaced by
// versions that count what they produce (see renderer.funcs).
var templateFuncs = map[string]bool{
	"secret": true, "json": true,
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"len": true, "index": true, "slice": true,
	"print": true, "printf": true, "println": true, "html": true, "js": true, "urlquery": true,
}

// Names of the functions instrumented templates call; a rule cannot name
// them (checkNode refuses what templateFuncs does not list).
const (
	fnIteration   = "_iteration"
	fnPathEscape  = "_pathEscape"
	fnQueryEscape = "_queryEscape"
)

// renderer is the budget of one rendering, and the writer it renders into.
type renderer struct {
	ctx        context.Context
	limit      int
	used       int
	iterations int
	out        strings.Builder
	// err is why the budget stopped the rendering; it is reported in place
	// of text/template's wrapping of it.
	err error
}

func (r *renderer) spend(n int) error {
	if r.err != nil {
		return r.err
	}
	if err := r.ctx.Err(); err != nil {
		r.err = fmt.Errorf("rendering stopped at the job's deadline: %w", err)
	} else if r.used += n; r.used > r.limit {
		r.err = fmt.Errorf("the template produces more than %s (output and function results)", size(r.limit))
	}
	return r.err
}

func (r *renderer) Write(p []byte) (int, error) {
	if err := r.spend(len(p)); err != nil {
		return 0, err
	}
	return r.out.Write(p)
}

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// cost is what formatting args takes at least: arguments are counted
// before a function runs, so that print of many copies of a long string
// fails before it allocates.
func cost(args ...any) int {
	n := 0
	for _, a := range args {
		if s, ok := a.(string); ok {
			n += len(s)
		} else {
			n += 8
		}
	}
	return n
}

// funcs are the template functions of one rendering. secret serves
// {{secret "NAME"}}; nil refuses it.
func (r *renderer) funcs(secret func(string) (string, error)) template.FuncMap {
	if secret == nil {
		secret = func(n string) (string, error) {
			return "", fmt.Errorf("secret %q: secrets are only available to http targets", n)
		}
	}
	// produce counts a function's arguments before it runs and its result
	// after.
	produce := func(f func() (string, error), args ...any) (string, error) {
		if err := r.spend(cost(args...)); err != nil {
			return "", err
		}
		s, err := f()
		if err != nil {
			return "", err
		}
		return s, r.spend(len(s))
	}
	// text is a function of any arguments that cannot fail, counted.
	text := func(f func(...any) string) func(...any) (string, error) {
		return func(a ...any) (string, error) { return produce(func() (string, error) { return f(a...), nil }, a...) }
	}
	return template.FuncMap{
		"secret": func(name string) (string, error) { return produce(func() (string, error) { return secret(name) }) },
		"json": func(v any) (string, error) {
			return produce(func() (string, error) { b, err := json.Marshal(v); return string(b), err }, v)
		},
		"printf": func(format string, a ...any) (string, error) {
			if err := checkFormat(format); err != nil {
				return "", err
			}
			return produce(func() (string, error) { return fmt.Sprintf(format, a...), nil }, append(a, format)...)
		},
		"print":    text(fmt.Sprint),
		"println":  text(fmt.Sprintln),
		"html":     text(template.HTMLEscaper),
		"js":       text(template.JSEscaper),
		"urlquery": text(template.URLQueryEscaper),
		fnIteration: func() (string, error) {
			if r.iterations++; r.iterations > maxIterations && r.err == nil {
				r.err = fmt.Errorf("range runs more than %d times", maxIterations)
			}
			return "", r.spend(0)
		},
		fnPathEscape: func(v any) (string, error) {
			s := fmt.Sprint(v)
			// url.PathEscape leaves dots alone, and a segment of "." or
			// ".." (escaped or not) climbs out of its place in the URL.
			if s != "" && strings.Trim(s, ".") == "" {
				return "", fmt.Errorf("a path value %q would climb out of its place in the URL (%w)", s, trigger.ErrPermanent)
			}
			return url.PathEscape(s), nil
		},
		fnQueryEscape: func(v any) string { return url.QueryEscape(fmt.Sprint(v)) },
	}
}

// checkFormat refuses printf widths, precisions and argument indexes: a
// width pads to up to a million bytes before anything is written.
func checkFormat(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		for i++; i < len(f) && strings.IndexByte("+-# 0", f[i]) >= 0; i++ {
		}
		if i < len(f) && strings.IndexByte("123456789*.[", f[i]) >= 0 {
			return fmt.Errorf("printf %q: widths, precisions and argument indexes are not allowed", f)
		}
	}
	return nil
}

// parseTemplate parses a target template, refuses what could make its work
// unbounded (checkNode) and instruments it: each range iteration counts
// against the budget and checks the deadline, and in a URL (isURL) each
// action's output is escaped for the part of the URL it lands in.
func parseTemplate(name, text string, isURL bool, funcs template.FuncMap) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, a := range t.Templates() {
		if a.Name() != name {
			return nil, fmt.Errorf("%s: define and block are not allowed", name)
		}
	}
	if t.Tree == nil {
		return t, nil
	}
	if err := checkNode(t.Root, false); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if isURL {
		if err := escapeURL(t.Root); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	countIterations(t.Root)
	return t, nil
}

// checkNode refuses, anywhere in a template, what could make its work
// grow beyond the size of the template and its data: range over anything
// but a field of the data, range inside range, {{template}}, and
// functions other than templateFuncs.
func checkNode(n parse.Node, inRange bool) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c, inRange); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode, *parse.CommentNode, *parse.BreakNode, *parse.ContinueNode:
		return nil
	case *parse.ActionNode:
		return checkPipe(n.Pipe)
	case *parse.IfNode:
		return errors.Join(checkPipe(n.Pipe), checkNode(n.List, inRange), checkNode(n.ElseList, inRange))
	case *parse.WithNode:
		return errors.Join(checkPipe(n.Pipe), checkNode(n.List, inRange), checkNode(n.ElseList, inRange))
	case *parse.RangeNode:
		if inRange {
			return fmt.Errorf("%s: range inside range is not allowed", n.Pipe)
		}
		if len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
			return fmt.Errorf("range %s: only over a field of the data ({{range .Field}})", n.Pipe)
		}
		if _, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode); !ok {
			return fmt.Errorf("range %s: only over a field of the data ({{range .Field}})", n.Pipe)
		}
		return errors.Join(checkNode(n.List, true), checkNode(n.ElseList, false))
	case *parse.TemplateNode:
		return fmt.Errorf("%s: {{template}} is not allowed", n)
	}
	return fmt.Errorf("%s is not allowed", n)
}

func checkPipe(p *parse.PipeNode) error {
	for _, c := range p.Cmds {
		for i, a := range c.Args {
			if err := checkArg(a); err != nil {
				return err
			}
			// A literal format is judged now, not only when it runs.
			if id, ok := a.(*parse.IdentifierNode); ok && i == 0 && id.Ident == "printf" && len(c.Args) > 1 {
				if s, ok := c.Args[1].(*parse.StringNode); ok {
					if err := checkFormat(s.Text); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func checkArg(a parse.Node) error {
	switch a := a.(type) {
	case *parse.IdentifierNode:
		if !templateFuncs[a.Ident] {
			return fmt.Errorf("function %q is not available", a.Ident)
		}
		return nil
	case *parse.PipeNode:
		return checkPipe(a)
	case *parse.ChainNode:
		return checkArg(a.Node)
	case *parse.FieldNode, *parse.VariableNode, *parse.DotNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
		return nil
	}
	return fmt.Errorf("%s is not allowed", a)
}

// call is an action calling the function fn with no arguments.
func call(fn string, pos parse.Pos) *parse.CommandNode {
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{parse.NewIdentifier(fn).SetPos(pos)}}
}

// countIterations makes every range iteration call fnIteration first
// (checkNode allows range only at one level).
func countIterations(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			countIterations(c)
		}
	case *parse.IfNode:
		countIterations(n.List)
		countIterations(n.ElseList)
	case *parse.WithNode:
		countIterations(n.List)
		countIterations(n.ElseList)
	case *parse.RangeNode:
		tick := &parse.ActionNode{NodeType: parse.NodeAction, Pos: n.Pos, Line: n.Line,
			Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Pos: n.Pos, Line: n.Line, Cmds: []*parse.CommandNode{call(fnIteration, n.Pos)}}}
		n.List.Nodes = append([]parse.Node{tick}, n.List.Nodes...)
	}
}

// escapeURL makes each action of a URL template escape its output for
// where it lands, judged from the literal text before it: in the path a
// value is one segment (url.PathEscape), in the query and the fragment
// it is one value (url.QueryEscape), so a branch named "main&x=y" stays
// one value. The scheme and host must be literal, so a URL template
// holds only text and actions (no if, with or range), and no action
// before the end of the host.
func escapeURL(root *parse.ListNode) error {
	var lit strings.Builder
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			lit.Write(n.Text)
		case *parse.CommentNode:
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				continue // a declaration writes nothing
			}
			fn, err := urlEscaper(lit.String())
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			n.Pipe.Cmds = append(n.Pipe.Cmds, call(fn, n.Pos))
		default:
			return fmt.Errorf("%s: a URL takes only text and {{…}} values, no if, with or range", n)
		}
	}
	return nil
}

// urlEscaper is the escaping function for a value that follows the
// literal text lit of a URL.
func urlEscaper(lit string) (string, error) {
	scheme, rest, ok := strings.Cut(lit, "://")
	if !ok || strings.ContainsAny(scheme, "/?#") {
		return "", errors.New("the URL's scheme and host must be written out, not templated")
	}
	i := strings.IndexAny(rest, "/?#")
	if i < 0 {
		return "", errors.New("the URL's host (and port and user) must be written out, not templated")
	}
	if strings.ContainsAny(rest[i:], "?#") {
		return fnQueryEscape, nil
	}
	return fnPathEscape, nil
}

// render executes one target template with d into at most limit bytes,
// stopping at ctx's deadline. Its errors name the template.
func render(ctx context.Context, name, text string, isURL bool, limit int, d trigger.TemplateData, secret func(string) (string, error)) (string, error) {
	r := &renderer{ctx: ctx, limit: limit}
	t, err := parseTemplate(name, text, isURL, r.funcs(secret))
	if err != nil {
		return "", err
	}
	if err := t.Execute(r, d); err != nil {
		if r.err != nil {
			err = r.err
		}
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return r.out.String(), nil
}

// permanent marks a rendering's failure permanent: the same template and
// data fail again.
func permanent(s string, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("%w (%w)", err, trigger.ErrPermanent)
	}
	return s, nil
}

// Text executes one target template with d into at most limit bytes
// (MaxBody, MaxValue), stopping at ctx's deadline. secret, when not nil,
// serves {{secret "NAME"}}; without it a template that asks for a secret
// fails. A template is checked before it runs, as when its rule was
// written: rules in a bucket may have been written by hand.
func Text(ctx context.Context, name, text string, limit int, d trigger.TemplateData, secret func(string) (string, error)) (string, error) {
	return permanent(render(ctx, name, text, false, limit, d, secret))
}

// URL renders a URL template: every value is escaped for where it
// lands, and the scheme and host are the template's own.
func URL(ctx context.Context, text string, d trigger.TemplateData, secret func(string) (string, error)) (string, error) {
	return permanent(render(ctx, "url", text, true, MaxValue, d, secret))
}

// Map renders every value of m (at most MaxValue each).
func Map(ctx context.Context, m map[string]string, d trigger.TemplateData, secret func(string) (string, error)) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		r, err := Text(ctx, k, v, MaxValue, d, secret)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}
