package bench

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// Limits on the knobs, to catch typos before they melt the machine.
const (
	maxConnections = 100_000
	maxPerConn     = 10_000
	maxRate        = 100_000
	maxFrameSize   = 16 << 20
)

// ErrConfig reports an invalid configuration or preset.
var ErrConfig = errors.New("bench: bad configuration")

// Config describes a load. The shape knobs are Ranges: a fixed value or a
// "min:max" range. Connections and Publishers are rolled once per run; the
// others are rolled once per connection.
type Config struct {
	// Description says what a preset models; it does not change the load.
	Description string `toml:"description"`

	// Connections is the number of sessions opened to the relay (A).
	Connections Range `toml:"connections"`
	// Publishers is how many of the connections publish; 0 means all of them.
	Publishers Range `toml:"publishers"`
	// Publish is the number of broadcasts, of one track each, a publishing
	// connection publishes (B).
	Publish Range `toml:"publish"`
	// Subscribe is the number of other connections' broadcasts each
	// connection subscribes to, chosen among the announced ones (C).
	Subscribe Range `toml:"subscribe"`
	// Rate is the frames per second written to each track (D).
	Rate Range `toml:"rate"`
	// Size is the size of each frame in bytes (E); the first frame of a group
	// is at least HeaderSize bytes.
	Size Range `toml:"size"`
	// Group is the number of frames per group (F); 0 or 1 puts every frame
	// in its own group.
	Group Range `toml:"group"`
	// Lifetime is how long, in seconds, a broadcast lives before it ends and
	// is replaced by a new one under a new name (announce churn); 0 means the
	// whole run.
	Lifetime Range `toml:"lifetime"`

	// Duration is how long the load runs before it is stopped.
	Duration time.Duration `toml:"duration"`
	// Startup is the window over which connections are opened, evenly
	// spaced; the final summary covers the time after it.
	Startup time.Duration `toml:"startup"`

	// URL is the relay: http://, https:// or moqt:// as for session.Dial.
	URL string `toml:"-"`
	// Dial holds the TLS trust settings for URL.
	Dial session.DialOptions `toml:"-"`
	// Prefix is the path under which the run's broadcasts are published, so
	// that runs sharing a relay do not see each other's broadcasts.
	Prefix string `toml:"-"`
	// Report is the interval between live reports.
	Report time.Duration `toml:"-"`
	// Seed makes the rolled values reproducible.
	Seed uint64 `toml:"-"`
	// Logger receives session events; nil discards them.
	Logger *slog.Logger `toml:"-"`
}

// DefaultConfig returns a small load: two connections, each publishing one
// 30 fps track of 1000-byte frames in one-second groups and following the
// other's, for 30 seconds.
func DefaultConfig() Config {
	return Config{
		Connections: Fixed(2),
		Publish:     Fixed(1),
		Subscribe:   Fixed(1),
		Rate:        Fixed(30),
		Size:        Fixed(1000),
		Group:       Fixed(30),
		Duration:    30 * time.Second,
		Startup:     time.Second,
		Prefix:      "bench",
		Report:      time.Second,
		Seed:        1,
	}
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	counts := []struct {
		name  string
		r     Range
		limit float64
	}{
		{"connections", c.Connections, maxConnections},
		{"publishers", c.Publishers, maxConnections},
		{"publish", c.Publish, maxPerConn},
		{"subscribe", c.Subscribe, maxPerConn},
		{"size", c.Size, maxFrameSize},
		{"group", c.Group, moq.MaxGroupFrames},
	}
	for _, k := range counts {
		if !k.r.integral() {
			return fmt.Errorf("%w: %s = %s must be whole numbers", ErrConfig, k.name, k.r)
		}
		if k.r.Max > k.limit {
			return fmt.Errorf("%w: %s = %s is above the limit of %g", ErrConfig, k.name, k.r, k.limit)
		}
	}
	switch {
	case c.Connections.Min < 1:
		return fmt.Errorf("%w: connections = %s must be at least 1", ErrConfig, c.Connections)
	case c.Publish.Max > 0 && c.Rate.Min <= 0:
		return fmt.Errorf("%w: rate = %s must be above 0 frames per second", ErrConfig, c.Rate)
	case c.Rate.Max > maxRate:
		return fmt.Errorf("%w: rate = %s is above the limit of %d frames per second", ErrConfig, c.Rate, maxRate)
	case c.Duration <= 0:
		return fmt.Errorf("%w: duration %v must be positive", ErrConfig, c.Duration)
	case c.Startup < 0:
		return fmt.Errorf("%w: startup %v must not be negative", ErrConfig, c.Startup)
	case c.Report <= 0:
		return fmt.Errorf("%w: report interval %v must be positive", ErrConfig, c.Report)
	case c.URL == "":
		return fmt.Errorf("%w: no relay URL", ErrConfig)
	case moq.NewPath(c.Prefix).IsEmpty():
		return fmt.Errorf("%w: the broadcast prefix must not be empty", ErrConfig)
	}
	return nil
}

//go:embed presets/*.toml
var presetFS embed.FS

// Preset names a shipped load shape.
type Preset struct {
	Name        string
	Description string
}

// Presets lists the shipped presets by name.
func Presets() []Preset {
	entries, err := fs.ReadDir(presetFS, "presets")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	var out []Preset
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".toml")
		var c Config
		if _, err := toml.DecodeFS(presetFS, "presets/"+e.Name(), &c); err != nil {
			panic(fmt.Sprintf("preset %s: %v", name, err)) // tested
		}
		out = append(out, Preset{Name: name, Description: c.Description})
	}
	return out
}

// LoadPreset applies a preset to c: a shipped preset by name, or else a
// TOML file. Keys absent from the preset keep c's values; unknown keys are
// an error.
func LoadPreset(c *Config, nameOrFile string) error {
	data, err := fs.ReadFile(presetFS, path.Join("presets", nameOrFile+".toml"))
	if err != nil {
		if data, err = os.ReadFile(nameOrFile); err != nil {
			var names []string
			for _, p := range Presets() {
				names = append(names, p.Name)
			}
			return fmt.Errorf("%w: preset %q is neither a shipped preset (%s) nor a readable file: %v",
				ErrConfig, nameOrFile, strings.Join(names, ", "), err)
		}
	}
	return applyTOML(c, nameOrFile, string(data))
}

func applyTOML(c *Config, name, data string) error {
	next := *c
	md, err := toml.Decode(data, &next)
	if err != nil {
		return fmt.Errorf("%w: preset %s: %v", ErrConfig, name, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		slices.Sort(keys)
		return fmt.Errorf("%w: preset %s: unknown keys %s", ErrConfig, name, strings.Join(keys, ", "))
	}
	*c = next
	return nil
}
