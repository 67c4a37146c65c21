// Package config reads slurmrun's settings from the process environment
// into typed structs, once per command: Run for the per-rank flow, Launch
// for `slurmrun launch`, Common for what every command shares. Each field's
// envconfig tag is the variable's exact name (camelCase included, as
// TensorRT-LLM's launch scripts export them), its default is the one
// default there is, and every bad or missing variable is named in one
// error.
package config

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Spec is a settings struct of this package.
type Spec interface {
	// check returns what is wrong beyond single values: requirements,
	// combinations, paths; set holds the environment's values by name.
	check(set map[string]string) []string
}

// Error lists every bad or missing variable at once.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "bad configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Read fills spec from environ (NAME=VALUE entries, the process
// environment as the command found it) in one pass. An empty variable
// counts as unset. A value that does not parse is named and its default
// used, so that the checks after it do not name it again.
func Read(environ []string, spec Spec) error {
	set := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			set[name] = value
		}
	}
	var problems []string
	for _, f := range fields(reflect.ValueOf(spec).Elem()) {
		value := set[f.name]
		if value == "" {
			value = f.def
		}
		if value == "" {
			continue
		}
		if err := decode(f.value, value); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", f.name, value, err))
			if f.def != "" {
				_ = decode(f.value, f.def)
			}
		}
	}
	problems = append(problems, spec.check(set)...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return &Error{Problems: problems}
	}
	return nil
}

// unsetName is a variable no environment sets: decode hands envconfig its
// value as this variable's default.
const unsetName = "SLURMRUN_CONFIG_VALUE_IS_THE_DEFAULT"

// decode parses value into field with envconfig's conversions (durations,
// booleans, comma lists, a type's Decode method). envconfig reads only the
// process environment, by upper-cased names, which would lose camelCase
// names and the environment a command is given: the value reaches it as
// the default of a one-field struct whose variable is never set.
func decode(field reflect.Value, value string) error {
	one := reflect.StructOf([]reflect.StructField{{
		Name: "V", Type: field.Type(),
		Tag: reflect.StructTag(fmt.Sprintf(`envconfig:%q default:%q`, unsetName, value)),
	}})
	v := reflect.New(one)
	if err := envconfig.Process("", v.Interface()); err != nil {
		if pe, ok := err.(*envconfig.ParseError); ok {
			return pe.Err
		}
		return err
	}
	field.Set(v.Elem().Field(0))
	return nil
}

type field struct {
	name, typ, def, desc string
	value                reflect.Value
}

// fields lists a settings struct's variables in order, those of embedded
// structs (Common) where they are embedded.
func fields(v reflect.Value) []field {
	var out []field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			out = append(out, fields(v.Field(i))...)
			continue
		}
		name := sf.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		out = append(out, field{name: name, typ: typeName(sf.Type), def: sf.Tag.Get("default"), desc: sf.Tag.Get("desc"), value: v.Field(i)})
	}
	return out
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "duration"
	case reflect.TypeOf([]string(nil)):
		return "list"
	case reflect.TypeOf(Rank(0)), reflect.TypeOf(Count(0)):
		return "int"
	case reflect.TypeOf(LogLevel(0)):
		return "level"
	case reflect.TypeOf(Switch("")):
		return "switch"
	case reflect.TypeOf(Role("")):
		return "role"
	case reflect.TypeOf(OptInList(nil)):
		return "list"
	case reflect.TypeOf(Profile("")):
		return "profile"
	}
	return t.Kind().String()
}

// Values lists each variable of spec with its value, for `slurmrun plan`.
func Values(spec Spec) [][2]string {
	var out [][2]string
	for _, f := range fields(reflect.ValueOf(spec).Elem()) {
		out = append(out, [2]string{f.name, fmt.Sprint(f.value.Interface())})
	}
	return out
}

// WriteUsage lists every variable of spec with its type, default and
// meaning.
func WriteUsage(w io.Writer, spec Spec) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tMEANING")
	for _, f := range fields(reflect.ValueOf(spec).Elem()) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.name, f.typ, f.def, f.desc)
	}
	fmt.Fprintln(tw, "\nAn empty variable counts as unset.")
	if err := tw.Flush(); err != nil {
		return err
	}
	if n, ok := spec.(interface{ notes(io.Writer) }); ok {
		n.notes(w)
	}
	return nil
}

// positive names each duration that is not above zero.
func positive(set map[string]string, durations map[string]time.Duration) []string {
	var problems []string
	for name, d := range durations {
		if d <= 0 {
			problems = append(problems, fmt.Sprintf("%s=%q: want a positive duration such as 30s", name, set[name]))
		}
	}
	return problems
}

// required names each variable that is unset or empty.
func required(set map[string]string, names ...string) []string {
	var problems []string
	for _, name := range names {
		if strings.TrimSpace(set[name]) == "" {
			problems = append(problems, name+": must be set and non-empty")
		}
	}
	return problems
}
