package entrypoint

import (
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// WheelPlaceholder is replaced by the wheel's install location.
const WheelPlaceholder = "__PLACEHOLDER_TRTLLM_WHL_PATH__"

// allowedBuiltins are the builtins the real pytestCommand strings use, plus
// harmless ones. Everything else that would make the command a script
// (eval, source, exec, set, trap, ...) is refused.
var allowedBuiltins = map[string]bool{
	"export": true, "unset": true, "cd": true, "true": true, "false": true, ":": true, "echo": true,
}

// Command is a parsed pytestCommand. It is parsed once; the placeholder is
// filled in the syntax tree, so a substituted value is never parsed as shell.
type Command struct {
	// Text is the command as given.
	Text string
	file *syntax.File
}

// ParseCommand parses text and refuses anything beyond the grammar the real
// commands use: lists of simple commands joined by &&, || or ;, with
// NAME=VAL prefixes, quotes and parameter expansions.
func ParseCommand(text string) (*Command, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("pytestCommand is empty")
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(text), "pytestCommand")
	if err != nil {
		return nil, fmt.Errorf("pytestCommand: %w", err)
	}
	var refused []string
	refuse := func(n syntax.Node, what string) {
		refused = append(refused, fmt.Sprintf("%s at column %d", what, n.Pos().Col()))
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case nil:
			// Walk's signal that a node's children are done.
		case *syntax.File, *syntax.Word, *syntax.Lit, *syntax.SglQuoted, *syntax.DblQuoted, *syntax.Comment:
		case *syntax.Assign:
			if n.Array != nil || n.Index != nil {
				refuse(n, "array assignment")
			}
		case *syntax.DeclClause:
			if n.Variant.Value != "export" {
				refuse(n, "builtin "+n.Variant.Value)
			}
		case *syntax.Stmt:
			if n.Background {
				refuse(n, "background job (&)")
			}
			if n.Coprocess {
				refuse(n, "coprocess")
			}
			if n.Negated {
				refuse(n, "negation (!)")
			}
			if len(n.Redirs) > 0 {
				refuse(n, "redirection")
			}
		case *syntax.CallExpr:
			if len(n.Args) > 0 {
				if name := n.Args[0].Lit(); name != "" && isBuiltin(name) && !allowedBuiltins[name] {
					refuse(n, "builtin "+name)
				}
			}
		case *syntax.BinaryCmd:
			if n.Op != syntax.AndStmt && n.Op != syntax.OrStmt {
				refuse(n, "pipe ("+n.Op.String()+")")
			}
		case *syntax.ParamExp:
			if n.Excl || n.Length || n.Width || n.Index != nil || n.Slice != nil || n.Repl != nil || n.Names != 0 {
				refuse(n, "parameter expansion other than $NAME, ${NAME} and ${NAME:-word}")
			}
			if n.Exp != nil && n.Exp.Op != syntax.DefaultUnsetOrNull && n.Exp.Op != syntax.DefaultUnset {
				refuse(n, "parameter expansion other than $NAME, ${NAME} and ${NAME:-word}")
			}
		case *syntax.Redirect:
			refuse(n, "redirection")
		case *syntax.CmdSubst:
			if n.Backquotes {
				refuse(n, "command substitution (backticks)")
			} else {
				refuse(n, "command substitution $(...)")
			}
			return false
		case *syntax.ProcSubst:
			refuse(n, "process substitution")
			return false
		case *syntax.ArithmExp:
			refuse(n, "arithmetic expansion")
			return false
		case *syntax.ExtGlob:
			refuse(n, "extended glob")
		case *syntax.BraceExp:
		default:
			refuse(n, fmt.Sprintf("%T", n))
			return false
		}
		return true
	})
	if len(refused) > 0 {
		return nil, fmt.Errorf("pytestCommand: refused %s (only simple commands joined by &&, || or ; are run)", strings.Join(refused, ", "))
	}
	return &Command{Text: text, file: f}, nil
}

func isBuiltin(name string) bool {
	switch name {
	case "alias", "bg", "builtin", "cd", "command", "declare", "dirs", "disown", "echo", "eval", "exec", "exit",
		"export", "false", "fg", "getopts", "hash", "jobs", "kill", "let", "local", "mapfile", "popd", "printf",
		"pushd", "pwd", "read", "readarray", "readonly", "return", "set", "shift", "shopt", "source", "test",
		"times", "trap", "true", "type", "typeset", "ulimit", "umask", "unalias", "unset", "wait", "[", ".", ":":
		return true
	}
	return false
}

// ansiCEscaper quotes a value for the inside of $'…'.
var ansiCEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// Fill returns a copy of the command with every occurrence of placeholder
// replaced by value, and the number of occurrences. The value is inserted as
// quoted text, so spaces, quotes, $(...), globs, braces, a leading ~ and
// backslashes reach the command verbatim, in every quoting context.
func (c *Command) Fill(placeholder, value string) (*Command, int, error) {
	clone, err := ParseCommand(c.Text)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	done := make(map[*syntax.Word]bool)
	var fillParts func(parts []syntax.WordPart, quoted bool) []syntax.WordPart
	fillParts = func(parts []syntax.WordPart, quoted bool) []syntax.WordPart {
		var out []syntax.WordPart
		for _, p := range parts {
			switch p := p.(type) {
			case *syntax.Lit:
				if !strings.Contains(p.Value, placeholder) {
					out = append(out, p)
					continue
				}
				pieces := strings.Split(p.Value, placeholder)
				n += len(pieces) - 1
				for i, piece := range pieces {
					if piece != "" {
						out = append(out, &syntax.Lit{ValuePos: p.ValuePos, ValueEnd: p.ValueEnd, Value: piece})
					}
					if i == len(pieces)-1 {
						break
					}
					if quoted {
						out = append(out, &syntax.Lit{ValuePos: p.ValuePos, ValueEnd: p.ValueEnd, Value: escapeDouble(value)})
					} else {
						out = append(out, &syntax.SglQuoted{Left: p.ValuePos, Right: p.ValueEnd, Value: value})
					}
				}
			case *syntax.SglQuoted:
				if strings.Contains(p.Value, placeholder) {
					n += strings.Count(p.Value, placeholder)
					q := *p
					v := value
					if p.Dollar {
						// $'…' decodes backslash escapes: escape the value's
						// own, so it arrives as it is.
						v = ansiCEscaper.Replace(value)
					}
					q.Value = strings.ReplaceAll(p.Value, placeholder, v)
					out = append(out, &q)
					continue
				}
				out = append(out, p)
			case *syntax.DblQuoted:
				p.Parts = fillParts(p.Parts, true)
				out = append(out, p)
			case *syntax.ParamExp:
				// The expansion of a default word is field-split by the
				// interpreter even where bash would not split it: leave it
				// unfilled, so the count check below refuses the command.
				if p.Exp != nil && p.Exp.Word != nil {
					done[p.Exp.Word] = true
				}
				out = append(out, p)
			default:
				out = append(out, p)
			}
		}
		return out
	}
	syntax.Walk(clone.file, func(node syntax.Node) bool {
		if w, ok := node.(*syntax.Word); ok && !done[w] {
			w.Parts = fillParts(w.Parts, false)
			done[w] = true
		}
		return true
	})
	if want := strings.Count(c.Text, placeholder); n != want {
		return nil, n, fmt.Errorf("pytestCommand: %d of %d occurrences of %s are in positions that cannot be filled safely (inside ${...})", want-n, want, placeholder)
	}
	clone.Text = strings.ReplaceAll(c.Text, placeholder, value)
	return clone, n, nil
}

// escapeDouble escapes what keeps its meaning inside double quotes.
func escapeDouble(s string) string {
	// Byte by byte: a path need not be valid UTF-8.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '"', '$', '`':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// References returns the variables the command expands without a default
// and without assigning them itself first; each is an error under nounset
// when it is not in the environment.
func (c *Command) References() []string {
	assigned := make(map[string]bool)
	seen := make(map[string]bool)
	var refs []string
	refsIn := func(w *syntax.Word) {
		if w == nil {
			return
		}
		syntax.Walk(w, func(m syntax.Node) bool {
			if pe, ok := m.(*syntax.ParamExp); ok {
				ref(pe, assigned, seen, &refs)
			}
			return true
		})
	}
	syntax.Walk(c.file, func(node syntax.Node) bool {
		switch n := node.(type) {
		case *syntax.CallExpr:
			// A prefix assignment is not visible to the command's own
			// arguments, so the arguments count as references first.
			for _, w := range n.Args {
				refsIn(w)
			}
			for _, a := range n.Assigns {
				refsIn(a.Value)
			}
			return false
		case *syntax.DeclClause:
			for _, a := range n.Args {
				refsIn(a.Value)
				if !a.Naked && a.Name != nil {
					assigned[a.Name.Value] = true
				}
			}
			return false
		}
		return true
	})
	return refs
}

func ref(pe *syntax.ParamExp, assigned, seen map[string]bool, refs *[]string) {
	if pe.Param == nil {
		return
	}
	name := pe.Param.Value
	if pe.Exp != nil || assigned[name] || seen[name] || !syntax.ValidName(name) {
		return
	}
	seen[name] = true
	*refs = append(*refs, name)
}
