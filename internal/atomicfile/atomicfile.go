// Package atomicfile writes files so that no reader, on this node or
// another over a shared filesystem, ever sees one half-written: the data
// goes to a temporary name beside the file and is renamed over it.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes data to path with mode perm, through a temporary name.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write creates path with mode perm from what fill writes, through a
// temporary name; when fill or the write fails, path is left as it was.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	return WriteVia(path, "", perm, fill)
}

// WriteVia is Write through the temporary name tmp, truncated first (a
// fresh unique name when ""): a name a later run can find and remove when
// this one is killed before the rename.
func WriteVia(path, tmpName string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	var tmp *os.File
	if tmpName == "" {
		tmp, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	} else {
		tmp, err = os.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
