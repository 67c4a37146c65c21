package launch

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// ReadSrunArgsFile reads the launch prefix's srun arguments in either of
// two formats. Upstream's slurm_srun_args.txt is one line, the arguments
// joined by spaces as a shell would read them: that line is split into
// words like the shell splits words, quotes honoured and nothing expanded.
// A file of several lines has one argument per line, taken verbatim (blank
// lines skipped).
func ReadSrunArgsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("srun arguments: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("srun arguments %s: %w", path, err)
	}
	if len(lines) != 1 {
		return lines, nil
	}
	words, err := SplitWords(lines[0])
	if err != nil {
		return nil, fmt.Errorf("srun arguments %s: %w", path, err)
	}
	return words, nil
}

// SplitWords splits s into words as the shell does, with quotes and
// backslashes honoured. An expansion ($VAR, $(…), `…`, $((…)), {a,b}) is
// refused rather than guessed at; glob characters stay as text.
func SplitWords(s string) ([]string, error) {
	file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(s), "")
	if err != nil {
		return nil, err
	}
	if len(file.Stmts) == 0 {
		return nil, nil
	}
	call, ok := file.Stmts[0].Cmd.(*syntax.CallExpr)
	if len(file.Stmts) != 1 || !ok || len(call.Assigns) > 0 || len(file.Stmts[0].Redirs) > 0 || file.Stmts[0].Background {
		return nil, fmt.Errorf("not a plain list of words: %q", s)
	}
	for _, w := range call.Args {
		var bad syntax.Node
		syntax.Walk(w, func(n syntax.Node) bool {
			switch n.(type) {
			case *syntax.ParamExp, *syntax.CmdSubst, *syntax.ArithmExp, *syntax.ProcSubst, *syntax.ExtGlob, *syntax.BraceExp:
				bad = n
			}
			return bad == nil
		})
		if bad != nil {
			return nil, fmt.Errorf("%q holds an expansion: write the value itself", s[w.Pos().Offset():w.End().Offset()])
		}
	}
	// Quote removal only: no environment, no globbing (no ReadDir), and
	// the expansions that would split fields were refused above.
	return expand.Fields(&expand.Config{}, call.Args...)
}
