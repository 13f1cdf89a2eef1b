package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// settingsFlags is a small flag set of each kind of setting.
type settingsFlags struct {
	fs      *flag.FlagSet
	listen  *string
	streams *int
	timeout *time.Duration
	insec   *bool
	peers   stringList
}

func newSettingsFlags() *settingsFlags {
	s := &settingsFlags{fs: flag.NewFlagSet("relay", flag.ContinueOnError)}
	s.listen = s.fs.String("listen", "localhost:4443", "")
	s.streams = s.fs.Int("max-streams", 1024, "")
	s.timeout = s.fs.Duration("request-timeout", 10*time.Second, "")
	s.insec = s.fs.Bool("peer-insecure", false, "")
	s.fs.Var(&s.peers, "peer", "")
	s.fs.String("config", "", "")
	return s
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSettingsPrecedence(t *testing.T) {
	file := writeConfig(t, `
listen = "0.0.0.0:1"
max-streams = 10
request-timeout = "3s"
peer-insecure = true
peer = ["http://a/", "http://b/"]
`)
	env := map[string]string{"MOQ_MAX_STREAMS": "20", "MOQ_PEER": "http://env/"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		args    []string
		listen  string
		streams int
		timeout time.Duration
		peers   []string
	}{
		{"defaults", nil, "localhost:4443", 1024, 10 * time.Second, nil},
		{"file", []string{file}, "0.0.0.0:1", 20, 3 * time.Second, []string{"http://env/"}},
		{"file by flag", []string{"--config", file}, "0.0.0.0:1", 20, 3 * time.Second, []string{"http://env/"}},
		{"flag over env and file", []string{file, "--max-streams", "30", "--peer", "http://flag/"}, "0.0.0.0:1", 30, 3 * time.Second, []string{"http://flag/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSettingsFlags()
			lookup := getenv
			if tt.name == "defaults" {
				lookup = func(string) string { return "" }
			}
			if err := parseSettings(s.fs, tt.args, io.Discard, lookup); err != nil {
				t.Fatal(err)
			}
			if *s.listen != tt.listen || *s.streams != tt.streams || *s.timeout != tt.timeout || !slices.Equal(s.peers, tt.peers) {
				t.Errorf("got listen %q streams %d timeout %v peers %q; want %q %d %v %q",
					*s.listen, *s.streams, *s.timeout, s.peers, tt.listen, tt.streams, tt.timeout, tt.peers)
			}
		})
	}
	// Without the environment the file's list is used.
	s := newSettingsFlags()
	if err := parseSettings(s.fs, []string{file}, io.Discard, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.peers, []string{"http://a/", "http://b/"}) || !*s.insec || *s.streams != 10 {
		t.Errorf("from the file: peers %q insecure %v streams %d", s.peers, *s.insec, *s.streams)
	}
	// MOQ_CONFIG names the file when no argument does.
	s = newSettingsFlags()
	if err := parseSettings(s.fs, nil, io.Discard, func(k string) string {
		if k == "MOQ_CONFIG" {
			return file
		}
		return ""
	}); err != nil || *s.listen != "0.0.0.0:1" {
		t.Errorf("MOQ_CONFIG: listen %q, %v", *s.listen, err)
	}
}

func TestSettingsErrors(t *testing.T) {
	none := func(string) string { return "" }
	tests := []struct {
		name   string
		config string
		args   []string
		getenv func(string) string
		want   string
	}{
		{"unknown key", "listen = \"x:1\"\nmax-stream = 5\nbogus = 1\n", nil, none, "unknown setting bogus, max-stream"},
		{"bad value in the file", "max-streams = \"many\"\n", nil, none, "max-streams: \"many\""},
		{"list for a single setting", "listen = [\"a\", \"b\"]\n", nil, none, "listen: a list"},
		{"bad value in the environment", "", nil, func(k string) string {
			if k == "MOQ_REQUEST_TIMEOUT" {
				return "soon"
			}
			return ""
		}, "MOQ_REQUEST_TIMEOUT: \"soon\""},
		{"not TOML", "listen = \n", nil, none, "config file"},
		{"two files", "", []string{"--config", "other.toml"}, none, "two config files"},
		{"missing file", "", nil, none, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			switch tt.name {
			case "missing file":
				args = []string{filepath.Join(t.TempDir(), "absent.toml")}
			default:
				args = append([]string{writeConfig(t, tt.config)}, args...)
			}
			err := parseSettings(newSettingsFlags().fs, args, io.Discard, tt.getenv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
