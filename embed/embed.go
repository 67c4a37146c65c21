// Package embed holds the assets compiled into slurmrun: the miniature
// TensorRT-LLM tree that `slurmrun demo` runs the flow on, and the report
// page's template.
package embed

import (
	goembed "embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed all:demo
var demo goembed.FS

//go:embed report.html.tmpl
var reportTemplate string

// ReportTemplate is the html/template of report.html: the page
// `slurmrun report` writes, self-contained (inline CSS and SVG, no script).
func ReportTemplate() string { return reportTemplate }

// DemoTree is the miniature tree: TensorRT-LLM/src (launcher, integration
// defs with conftest, pytest.ini, tests and perf scripts), site/ (an
// installed tensorrt_llm distribution) and workspace/ (a coverage config).
func DemoTree() fs.FS {
	sub, err := fs.Sub(demo, "demo")
	if err != nil {
		panic(err) // the directory is compiled in
	}
	return sub
}

// Unpack writes the demo tree into dir, keeping executables executable.
func Unpack(dir string) error {
	tree := DemoTree()
	return fs.WalkDir(tree, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := fs.ReadFile(tree, name)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if len(data) > 2 && string(data[:2]) == "#!" {
			mode = 0o755
		}
		if err := os.WriteFile(target, data, mode); err != nil {
			return fmt.Errorf("unpack demo tree: %w", err)
		}
		return nil
	})
}
