package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

// Each source: what arrives is the whole file under its name, through the
// staged name, which is gone afterwards; a failure leaves nothing under
// the real name, and an earlier file there stays as it was.
func TestTo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("archive"))
		case "/broken":
			// A body cut short: the length promised is not sent.
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("part"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	src := filepath.Join(t.TempDir(), "src.tar.gz")
	must.Do(t, os.WriteFile(src, []byte("archive"), 0o644))
	for _, tt := range []struct {
		name, location, staged, fails string
	}{
		{name: "http", location: srv.URL + "/ok", staged: "dest.tmp.7.0"},
		{name: "file URL", location: "file://" + src},
		{name: "path", location: src, staged: "dest.tmp.7.1"},
		{name: "not found", location: srv.URL + "/missing", fails: "HTTP 404 Not Found"},
		{name: "cut short", location: srv.URL + "/broken", staged: "dest.tmp.7.2", fails: "unexpected EOF"},
		{name: "scheme", location: "ftp://host/x", fails: `unsupported URL scheme "ftp"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "dest")
			staged := ""
			if tt.staged != "" {
				staged = filepath.Join(dir, tt.staged)
			}
			if tt.fails != "" {
				must.Do(t, os.WriteFile(dest, []byte("earlier"), 0o644))
			}
			err := To(context.Background(), tt.location, dest, staged)
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("left in the directory: %v", entries)
			}
			if tt.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fails) {
					t.Fatalf("want an error with %q, got %v", tt.fails, err)
				}
				if got := string(must.Read(t, dest)); got != "earlier" {
					t.Errorf("the earlier file became %q", got)
				}
				return
			}
			if err != nil || string(must.Read(t, dest)) != "archive" {
				t.Fatalf("%v", err)
			}
		})
	}
}

// A bound that runs out mid-transfer ends it, and nothing is left.
func TestToStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first part"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := To(ctx, srv.URL, filepath.Join(dir, "dest"), "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want the deadline, got %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
