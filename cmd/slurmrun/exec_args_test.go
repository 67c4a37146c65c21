package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/config"
)

// exec reads tini's flags as tini does: getopt-style clusters, values
// attached or apart, stopping at -- or the first word that is no option.
func TestParseExecArgs(t *testing.T) {
	env := config.Exec{Common: config.Common{Grace: 20 * time.Second}, Verbosity: 1}
	for _, tt := range []struct {
		args []string
		env  config.Exec
		want string // the options, or the error
	}{
		{[]string{"--", "cmd", "-g"}, env, "group=false pdeath=0 remap=[] v=1 warn=false kill=0s sweep=20s argv=[cmd -g]"},
		{[]string{"cmd", "-x"}, env, "group=false pdeath=0 remap=[] v=1 warn=false kill=0s sweep=20s argv=[cmd -x]"},
		{[]string{"-sgvvw", "-p", "SIGKILL", "-e3", "-e", "143", "-t", "5s", "cmd"}, env,
			"group=true pdeath=9 remap=[3 143] v=3 warn=true kill=5s sweep=20s argv=[cmd]"},
		{[]string{"-p", "term", "cmd"}, env, "group=false pdeath=15 remap=[] v=1 warn=false kill=0s sweep=20s argv=[cmd]"},
		{[]string{"cmd"}, config.Exec{Common: config.Common{Grace: time.Second}, KillProcessGroup: "1", Verbosity: 0},
			"group=true pdeath=0 remap=[] v=0 warn=false kill=0s sweep=1s argv=[cmd]"},
		{nil, env, "no command given"},
		{[]string{"--"}, env, "no command given"},
		{[]string{"-x", "cmd"}, env, "unknown option -x"},
		{[]string{"-p"}, env, "-p needs a value"},
		{[]string{"-p", "NOPE", "cmd"}, env, "-p NOPE: unknown signal"},
		{[]string{"-e", "256", "cmd"}, env, "-e 256: want an exit code 0-255"},
		{[]string{"-t", "0s", "cmd"}, env, "-t 0s: want a positive duration such as 30s"},
		{[]string{"-h"}, env, errHelp.Error()},
		{[]string{"--help"}, env, errHelp.Error()},
	} {
		o, err := parseExecArgs(tt.args, tt.env)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			var remap []int
			for _, c := range []int{0, 1, 2, 3, 143, 255} {
				if o.remap[c] {
					remap = append(remap, c)
				}
			}
			got = fmt.Sprintf("group=%v pdeath=%d remap=%v v=%d warn=%v kill=%v sweep=%v argv=%v",
				o.group, o.pdeathsig, strings.Trim(fmt.Sprint(remap), "[]"), o.verbosity, o.warnReap, o.killAfter, o.sweep, o.argv)
			got = strings.Replace(got, "remap=", "remap=[", 1)
			got = strings.Replace(got, " v=", "] v=", 1)
		}
		if got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.args, got, tt.want)
		}
	}
}
