package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarball(t *testing.T, entries []entry) string {
	t.Helper()
	path, err := writeTarball(t.TempDir(), entries)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTarball writes entries as dir/a.tar.gz.
func writeTarball(dir string, entries []entry) (string, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	gz.Close()
	path := filepath.Join(dir, "a.tar.gz")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

func TestExtract(t *testing.T) {
	dir := t.TempDir()
	err := Extract(tarball(t, []entry{
		{name: "TensorRT-LLM/", typ: tar.TypeDir},
		{name: "TensorRT-LLM/src/setup.py", typ: tar.TypeReg, body: "x"},
		{name: "./TensorRT-LLM/link", typ: tar.TypeSymlink, link: "src/setup.py"},
	}), dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "TensorRT-LLM", "link")); err != nil || string(data) != "x" {
		t.Fatalf("extracted tree wrong: %q %v", data, err)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"dot-dot", []entry{{name: "../evil", typ: tar.TypeReg, body: "x"}}},
		{"absolute", []entry{{name: "/tmp/evil", typ: tar.TypeReg, body: "x"}}},
		{"absolute link", []entry{{name: "l", typ: tar.TypeSymlink, link: "/etc"}}},
		{"escaping link", []entry{{name: "a/l", typ: tar.TypeSymlink, link: "../../.."}}},
		{"hard link out", []entry{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}}},
		{"link chain", []entry{{name: "a", typ: tar.TypeSymlink, link: "."}, {name: "b", typ: tar.TypeSymlink, link: "a/../outside"}}},
		{"link chain in a directory", []entry{{name: "d/up", typ: tar.TypeSymlink, link: ".."},
			{name: "d/b", typ: tar.TypeSymlink, link: "up/../evil"}}},
		{"link loop", []entry{{name: "x", typ: tar.TypeSymlink, link: "y"}, {name: "y", typ: tar.TypeSymlink, link: "x"},
			{name: "z", typ: tar.TypeSymlink, link: "x/../.."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "target")
			must.Do(t, os.Mkdir(dir, 0o755))
			if err := Extract(tarball(t, tt.entries), dir); err == nil {
				t.Fatal("want a refusal")
			}
			if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("a file escaped the target")
			}
			// No link left in the target resolves outside it.
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.Type()&fs.ModeSymlink == 0 {
					return nil
				}
				if real, err := filepath.EvalSymlinks(p); err == nil && !strings.HasPrefix(real, dir) {
					t.Errorf("%s resolves to %s, outside the target", p, real)
				}
				return nil
			})
		})
	}
}

// Whatever the entries' names and link targets, nothing lands outside the
// target and no link left in it resolves outside it.
func FuzzExtractEntries(f *testing.F) {
	f.Add("a", ".", "b", "a/../outside", "b/evil")
	f.Add("d/up", "..", "d/b", "up/../evil", "d/b/x")
	f.Add("../x", "y", "./z", "/etc", "z/passwd")
	f.Add("l", "l", "m", "l/..", "m/n")
	f.Fuzz(func(t *testing.T, link1, target1, link2, target2, file string) {
		for _, s := range []string{link1, target1, link2, target2, file} {
			if strings.ContainsRune(s, 0) || len(s) > 200 {
				return
			}
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "target")
		must.Do(t, os.Mkdir(dir, 0o755))
		archive, err := writeTarball(t.TempDir(), []entry{{name: link1, typ: tar.TypeSymlink, link: target1},
			{name: link2, typ: tar.TypeSymlink, link: target2}, {name: file, typ: tar.TypeReg, body: "x"}})
		if err != nil {
			return // no tar writer makes such an archive
		}
		_ = Extract(archive, dir) // refusing is fine; escaping is not
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.Name() != "target" {
				t.Fatalf("%s written beside the target", e.Name())
			}
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			if real, err := filepath.EvalSymlinks(p); err == nil && real != dir && !strings.HasPrefix(real, dir+"/") {
				t.Fatalf("%s resolves to %s, outside the target", p, real)
			}
			return nil
		})
	})
}
