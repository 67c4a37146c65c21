package config

// Exec is what `slurmrun exec` reads besides its flags: tini's variables,
// and the grace of the sweep after the child has exited.
type Exec struct {
	Common
	KillProcessGroup string `envconfig:"TINI_KILL_PROCESS_GROUP" desc:"set: as -g, signals go to the child's process group"`
	Verbosity        int    `envconfig:"TINI_VERBOSITY" default:"1" desc:"0 errors only, 1 warnings, then info, debug, trace (as -v)"`
}

func (e *Exec) check(set map[string]string) []string { return e.Common.check(set) }
