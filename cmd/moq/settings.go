package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Settings come from four places, the first that has one winning: a flag,
// an environment variable MOQ_<FLAG> (upper case, dashes as underscores),
// a TOML file whose keys are the flag names, and the flag's default. A
// repeatable flag takes an array in the file and a comma-separated list in
// the environment.

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "MOQ_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseSettings parses args (an optional config file path first, or
// --config) into fs and fills the flags not given from the environment and
// then from the config file. fs must define a "config" string flag.
func parseSettings(fs *flag.FlagSet, args []string, stderr io.Writer, getenv func(string) string) error {
	var positional string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		positional, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := fs.Lookup("config").Value.String()
	if positional != "" {
		if path != "" {
			return fmt.Errorf("two config files: %s and --config %s; give one", positional, path)
		}
		path = positional
	}
	if path == "" {
		path = getenv(envName("config"))
	}
	file, err := readSettingsFile(path)
	if err != nil {
		return err
	}
	var unknown []string
	for key := range file {
		if fs.Lookup(key) == nil || key == "config" {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("%s: unknown setting %s (the settings are the flags of moq %s -h)", path, strings.Join(unknown, ", "), fs.Name())
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			errs = append(errs, setFlag(f, strings.Split(v, ","), isList(f), envName(f.Name)))
			return
		}
		if v, ok := file[f.Name]; ok {
			errs = append(errs, setFromFile(f, v, path))
		}
	})
	return errors.Join(errs...)
}

// readSettingsFile reads a TOML config file; no path means no file.
func readSettingsFile(path string) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var file map[string]any
	if _, err := toml.Decode(string(data), &file); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return file, nil
}

// isList reports whether a flag is repeatable.
func isList(f *flag.Flag) bool {
	_, ok := f.Value.(*stringList)
	return ok
}

// setFromFile sets f from a TOML value: an array for a repeatable flag,
// anything else in its text form.
func setFromFile(f *flag.Flag, v any, path string) error {
	where := path + ": " + f.Name
	if list, ok := v.([]any); ok {
		if !isList(f) {
			return fmt.Errorf("%s: a list, but the setting takes one value", where)
		}
		values := make([]string, len(list))
		for i, item := range list {
			values[i] = fmt.Sprint(item)
		}
		return setFlag(f, values, true, where)
	}
	return setFlag(f, []string{fmt.Sprint(v)}, isList(f), where)
}

// setFlag sets f to values (several only for a repeatable flag).
func setFlag(f *flag.Flag, values []string, list bool, where string) error {
	if !list {
		values = []string{strings.Join(values, ",")}
	}
	for _, v := range values {
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("%s: %q: %v", where, v, err)
		}
	}
	return nil
}
