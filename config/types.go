package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
)

// Rank is a non-negative decimal integer. envconfig alone would read
// "010" as octal 8.
type Rank int

// Decode implements envconfig.Decoder.
func (r *Rank) Decode(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 31)
	if err != nil {
		return fmt.Errorf("want a non-negative decimal integer")
	}
	*r = Rank(n)
	return nil
}

// Count is a positive decimal integer.
type Count int

// Decode implements envconfig.Decoder.
func (c *Count) Decode(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 31)
	if err != nil || n == 0 {
		return fmt.Errorf("want a positive decimal integer")
	}
	*c = Count(n)
	return nil
}

// Switch is on, off or auto.
type Switch string

// Decode implements envconfig.Decoder.
func (w *Switch) Decode(s string) error {
	switch s {
	case "on", "off", "auto":
		*w = Switch(s)
		return nil
	}
	return fmt.Errorf("want on, off or auto")
}

// LogLevel is a logrus level.
type LogLevel logrus.Level

// Decode implements envconfig.Decoder.
func (l *LogLevel) Decode(s string) error {
	lv, err := logrus.ParseLevel(s)
	if err != nil {
		return fmt.Errorf("want debug, info, warn or error")
	}
	*l = LogLevel(lv)
	return nil
}

// Role is the disaggregated serving role of a step, empty in aggregated jobs.
type Role string

// Decode implements envconfig.Decoder.
func (r *Role) Decode(s string) error {
	switch {
	case s == "", s == "DISAGG_SERVER", s == "BENCHMARK":
	case strings.HasPrefix(s, "GEN_") || strings.HasPrefix(s, "CTX_"):
		if _, err := strconv.ParseUint(s[4:], 10, 16); err != nil {
			return fmt.Errorf("want GEN_<n> or CTX_<n> with a decimal n")
		}
	default:
		return fmt.Errorf("want GEN_<n>, CTX_<n>, DISAGG_SERVER or BENCHMARK")
	}
	*r = Role(s)
	return nil
}

// Worker reports whether the role is a GEN or CTX server.
func (r Role) Worker() bool {
	return strings.HasPrefix(string(r), "GEN_") || strings.HasPrefix(string(r), "CTX_")
}

// Name is the role for file names and logs.
func (r Role) Name() string {
	if r == "" {
		return "aggregated"
	}
	return string(r)
}

// NeedsPlaceholder reports whether the command must carry the wheel-path
// placeholder. Upstream's submit.py strips --cov from worker and router
// commands, so only the benchmark and aggregated commands must have it (submit.py, see the README).
func (r Role) NeedsPlaceholder() bool { return r == "" || r == "BENCHMARK" }

func (l LogLevel) String() string { return logrus.Level(l).String() }
