package config

import (
	"fmt"
	"time"
)

// Common is what every command that starts processes reads: the init's
// and the job's grace. Run, Launch and Exec embed it.
type Common struct {
	// Below Slurm's default KillWait of 30 s, so that slurmrun's own KILL
	// comes before Slurm's.
	Grace time.Duration `envconfig:"SLURMRUN_GRACE" default:"20s" desc:"after SIGTERM, how long commands get before SIGKILL (keep below Slurm's KillWait)"`
}

func (c *Common) check(set map[string]string) []string {
	return positive(set, map[string]time.Duration{"SLURMRUN_GRACE": c.Grace})
}

// Logs is how slurmrun logs. Run and Launch embed it.
type Logs struct {
	LogLevel  LogLevel `envconfig:"SLURMRUN_LOG_LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	LogFormat string   `envconfig:"SLURMRUN_LOG_FORMAT" default:"text" desc:"log format: text or json"`
}

func (l *Logs) check(map[string]string) []string {
	if l.LogFormat != "text" && l.LogFormat != "json" {
		return []string{fmt.Sprintf("SLURMRUN_LOG_FORMAT=%q: want text or json", l.LogFormat)}
	}
	return nil
}

// ReadCommon reads Common alone. With a bad value it returns the defaults
// and the error: the init must run with some grace, and the job it starts
// reports the value.
func ReadCommon(environ []string) (Common, error) {
	var c Common
	if err := Read(environ, &c); err != nil {
		var d Common
		_ = Read(nil, &d)
		return d, err
	}
	return c, nil
}
