// Package tarball unpacks the TensorRT-LLM tarball the install downloads,
// without letting any entry land, or any link point, outside the target.
package tarball

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Extract unpacks a tar or tar.gz archive into dir. No entry may land
// outside dir: absolute names, ".." and symbolic links that point out of dir
// are refused, and writes go through an os.Root, which will not follow a
// link out of it.
func Extract(archive, dir string) error {
	file, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer file.Close()
	br := bufio.NewReader(file)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			if err := writeEntry(root, name, mode, tr); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if path.IsAbs(target) || !staysInRoot(root, path.Dir(name), target) {
				return fmt.Errorf("%s: symbolic link to %s leaves %s", hdr.Name, target, dir)
			}
			root.Remove(name)
			if err := root.Symlink(target, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err != nil {
				return err
			}
			root.Remove(name)
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		default:
			// Devices, FIFOs and the like have no place in a source tarball.
		}
	}
}

// staysInRoot reports whether target, a link's text in directory dir,
// resolves inside root, following the links already extracted as the kernel
// would: `a -> .` then `b -> a/../outside` leaves the root although the
// text of b alone does not.
func staysInRoot(root *os.Root, dir, target string) bool {
	var at []string // the resolved path so far, relative to root
	pending := append(strings.Split(dir, "/"), strings.Split(target, "/")...)
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return false
			}
			at = at[:len(at)-1]
			continue
		}
		at = append(at, c)
		fi, err := root.Lstat(path.Join(at...))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue // not there yet, or not a link: a name like any other
		}
		if hops++; hops > 40 { // the kernel's limit: a loop
			return false
		}
		link, err := root.Readlink(path.Join(at...))
		if err != nil || path.IsAbs(link) {
			return false
		}
		at = at[:len(at)-1]
		pending = append(strings.Split(link, "/"), pending...)
	}
	return true
}

func writeEntry(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	root.Remove(name) // replace, never write through an existing link
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// entryName cleans an archive member name, refusing ones that leave the root.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || escapes(clean) {
		return "", fmt.Errorf("archive member %q leaves the target directory", name)
	}
	return clean, nil
}

func escapes(p string) bool {
	p = path.Clean(p)
	return p == ".." || strings.HasPrefix(p, "../")
}
