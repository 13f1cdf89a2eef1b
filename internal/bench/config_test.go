package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPresets(t *testing.T) {
	want := []string{"announce-churn", "audio", "chat-1to1", "chat-1toN", "hd-video", "sd-video"}
	presets := Presets()
	if len(presets) != len(want) {
		t.Fatalf("Presets() = %v, want %v", presets, want)
	}
	for i, p := range presets {
		if p.Name != want[i] || p.Description == "" {
			t.Errorf("preset %d = %+v, want %q with a description", i, p, want[i])
		}
		c := DefaultConfig()
		c.URL = "moqt://localhost:4443"
		if err := LoadPreset(&c, p.Name); err != nil {
			t.Errorf("LoadPreset(%q): %v", p.Name, err)
			continue
		}
		if err := c.Validate(); err != nil {
			t.Errorf("preset %q: %v", p.Name, err)
		}
		if c.Description != p.Description {
			t.Errorf("preset %q: description not loaded", p.Name)
		}
	}
}

func TestLoadPresetValues(t *testing.T) {
	c := DefaultConfig()
	if err := LoadPreset(&c, "chat-1toN"); err != nil {
		t.Fatal(err)
	}
	if c.Connections != Fixed(51) || c.Publishers != Fixed(1) || c.Group != Fixed(0) || c.Size != (Range{28, 500}) {
		t.Errorf("chat-1toN loaded as %+v", c)
	}
	// Keys absent from the preset keep their values.
	if c.Duration != DefaultConfig().Duration || c.Lifetime != (Range{}) {
		t.Errorf("chat-1toN changed duration %v or lifetime %v", c.Duration, c.Lifetime)
	}
}

func TestLoadPresetFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		content string
		err     string // substring; empty for success
		check   func(Config) bool
	}{
		{"ok.toml", "connections = \"3:9\"\nrate = 12.5\nduration = \"1m\"\nstartup = \"10s\"\n", "",
			func(c Config) bool {
				return c.Connections == (Range{3, 9}) && c.Rate == Fixed(12.5) && c.Duration == time.Minute && c.Startup == 10*time.Second
			}},
		{"unknown.toml", "connection = 3\nspeed = 1\n", "unknown keys connection, speed", nil},
		{"badrange.toml", "size = \"9:1\"\n", "min is above max", nil},
		{"badtype.toml", "size = true\n", "not a number", nil},
		{"syntax.toml", "size = \n", "preset", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			before := c
			err := LoadPreset(&c, write(tc.name, tc.content))
			if tc.err == "" {
				if err != nil || !tc.check(c) {
					t.Fatalf("LoadPreset = %v, config %+v", err, c)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("LoadPreset = %v, want ErrConfig containing %q", err, tc.err)
			}
			if c.Size != before.Size || c.Connections != before.Connections {
				t.Errorf("a failed LoadPreset changed the config")
			}
		})
	}
	c := DefaultConfig()
	err := LoadPreset(&c, filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "hd-video") {
		t.Errorf("LoadPreset(missing) = %v, want ErrConfig listing the presets", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		err    string
	}{
		{"default", func(*Config) {}, ""},
		{"no url", func(c *Config) { c.URL = "" }, "URL"},
		{"no connections", func(c *Config) { c.Connections = Fixed(0) }, "connections"},
		{"fractional", func(c *Config) { c.Publish = Range{1, 2.5} }, "whole numbers"},
		{"too many", func(c *Config) { c.Connections = Fixed(1e6) }, "limit"},
		{"zero rate", func(c *Config) { c.Rate = Range{0, 5} }, "rate"},
		{"zero rate without publishing", func(c *Config) { c.Rate, c.Publish = Fixed(0), Fixed(0) }, ""},
		{"fractional rate", func(c *Config) { c.Rate = Fixed(0.25) }, ""},
		{"huge group", func(c *Config) { c.Group = Fixed(5000) }, "group"},
		{"huge frame", func(c *Config) { c.Size = Fixed(1 << 30) }, "size"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"negative startup", func(c *Config) { c.Startup = -time.Second }, "startup"},
		{"no report", func(c *Config) { c.Report = 0 }, "report"},
		{"empty prefix", func(c *Config) { c.Prefix = "/" }, "prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.URL = "moqt://localhost:4443"
			tc.change(&c)
			err := c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate = %v, want ErrConfig mentioning %q", err, tc.err)
			}
		})
	}
}
