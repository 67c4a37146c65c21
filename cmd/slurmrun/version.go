package main

import (
	"flag"
	"fmt"
)

func versionCommand() *command {
	return &command{
		name: "version", summary: "print the version and commit",
		define: func(*flag.FlagSet) func(*invocation) int {
			return func(in *invocation) int {
				fmt.Fprintf(in.stdout, "slurmrun %s (commit %s)\n", version, commit)
				return 0
			}
		},
	}
}
