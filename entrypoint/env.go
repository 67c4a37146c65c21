package entrypoint

import (
	"sort"
	"strings"

	"github.com/slurmrun/slurmrun/internal/redact"
)

// Env is an environment as an ordered set of NAME=VALUE entries. Later
// entries of the same name win, as in the process environment.
type Env struct {
	names  []string
	values map[string]string
}

// NewEnv builds an Env from NAME=VALUE entries.
func NewEnv(environ []string) *Env {
	e := &Env{values: make(map[string]string, len(environ))}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && name != "" {
			e.Set(name, value)
		}
	}
	return e
}

// Clone returns an independent copy.
func (e *Env) Clone() *Env {
	c := &Env{names: append([]string(nil), e.names...), values: make(map[string]string, len(e.values))}
	for k, v := range e.values {
		c.values[k] = v
	}
	return c
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	v, ok := e.values[name]
	return v, ok
}

// Set sets name to value.
func (e *Env) Set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

// Unset removes name.
func (e *Env) Unset(name string) {
	if _, ok := e.values[name]; !ok {
		return
	}
	delete(e.values, name)
	for i, n := range e.names {
		if n == name {
			e.names = append(e.names[:i], e.names[i+1:]...)
			break
		}
	}
}

// Names returns the set names in the order they were first set.
func (e *Env) Names() []string { return append([]string(nil), e.names...) }

// List returns NAME=VALUE entries for exec.
func (e *Env) List() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}

// Dump returns the entries sorted as `env | sort` prints them, with secret
// values masked.
func (e *Env) Dump(red *redact.Redactor) []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+red.Value(n, e.values[n]))
	}
	sort.Strings(out)
	return out
}
