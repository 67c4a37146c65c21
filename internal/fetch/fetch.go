// Package fetch downloads a file (http, https, a file URL or a path) to its
// destination through a temporary name, so that a broken attempt never
// leaves a partial file under the real name (and a retry never saves
// "name.1", as a bare wget does).
package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/slurmrun/slurmrun/internal/atomicfile"
)

// To copies location to dest through the temporary name staged (a fresh
// one beside dest when ""), renamed over dest once complete. ctx bounds the
// transfer.
func To(ctx context.Context, location, dest, staged string) error {
	src, err := open(ctx, location)
	if err != nil {
		return err
	}
	defer src.Close()
	return atomicfile.WriteVia(dest, staged, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
}

func open(ctx context.Context, location string) (io.ReadCloser, error) {
	u, err := url.Parse(location)
	if err != nil || u.Scheme == "" {
		return os.Open(location)
	}
	switch u.Scheme {
	case "file":
		return os.Open(u.Path)
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
		return resp.Body, nil
	}
	return nil, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
}
