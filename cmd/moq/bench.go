package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moqgo/moq/internal/bench"
)

// benchKnobs are the load-shape flags; each overrides the preset's value.
var benchKnobs = []struct {
	name, usage string
	field       func(*bench.Config) *bench.Range
}{
	{"connections", "sessions to open (A): `N` or MIN:MAX", func(c *bench.Config) *bench.Range { return &c.Connections }},
	{"publishers", "how many of the connections publish, `N` or MIN:MAX; 0: all", func(c *bench.Config) *bench.Range { return &c.Publishers }},
	{"publish", "broadcasts (one track each) published per connection (B): `N` or MIN:MAX", func(c *bench.Config) *bench.Range { return &c.Publish }},
	{"subscribe", "announced broadcasts subscribed per connection (C): `N` or MIN:MAX", func(c *bench.Config) *bench.Range { return &c.Subscribe }},
	{"rate", "frames per second per track (D): `N` or MIN:MAX", func(c *bench.Config) *bench.Range { return &c.Rate }},
	{"size", "bytes per frame (E): `N` or MIN:MAX", func(c *bench.Config) *bench.Range { return &c.Size }},
	{"group", "frames per group; 0: every frame its own group (F): `N` or MIN:MAX", func(c *bench.Config) *bench.Range { return &c.Group }},
	{"lifetime", "seconds a broadcast lives before a new one replaces it, `N` or MIN:MAX; 0: the whole run", func(c *bench.Config) *bench.Range { return &c.Lifetime }},
}

// runBench generates load against a relay and reports what arrives.
func runBench(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	url := fs.String("url", "", "relay URL: http://localhost:4443/ (local relay), https://..., moqt://host:port")
	insecure := fs.Bool("insecure", false, "accept any server certificate (testing only)")
	fingerprint := fs.String("fingerprint", "", "trust only the server certificate with this SHA-256 (64 hex digits)")
	logLevel := fs.String("log-level", "error", "session log level: debug, info, warn, error")
	preset := fs.String("preset", "", "`name` of a shipped preset, or a TOML file; flags override it")
	var over bench.Config
	for _, k := range benchKnobs {
		fs.Var(k.field(&over), k.name, k.usage)
	}
	fs.DurationVar(&over.Duration, "duration", 30*time.Second, "how long to run")
	fs.DurationVar(&over.Startup, "startup", time.Second, "window over which connections are opened")
	report := fs.Duration("report", time.Second, "interval between live reports")
	output := fs.String("output", "", "append every report as a JSON line to this `file`")
	prefix := fs.String("prefix", "", "broadcast path prefix (default bench/ and a random run id)")
	seed := fs.Uint64("seed", 1, "seed for the values rolled from ranges")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: moq bench --url URL [--preset NAME|FILE] [flags]")
		fmt.Fprintln(w, "Opens A connections; each publishes B broadcasts of one track (D frames/s of E bytes,")
		fmt.Fprintln(w, "F frames per group) and subscribes to C broadcasts of others found through announcements.")
		fmt.Fprintln(w, "Every shape flag takes N or MIN:MAX, rolled per connection (connections and publishers once).")
		fmt.Fprintln(w, "Without a preset: 2 connections, 1 broadcast each way, 30 frames/s of 1000 bytes, 30 frames per group.")
		fmt.Fprintln(w, "\npresets:")
		for _, p := range bench.Presets() {
			fmt.Fprintf(w, "  %-15s %s\n", p.Name, p.Description)
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *url == "" {
		fmt.Fprintln(stderr, "moq bench: missing --url")
		fs.Usage()
		return errUsage
	}

	cfg := bench.DefaultConfig()
	if *preset != "" {
		if err := bench.LoadPreset(&cfg, *preset); err != nil {
			return err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		for _, k := range benchKnobs {
			if k.name == f.Name {
				*k.field(&cfg) = *k.field(&over)
			}
		}
		switch f.Name {
		case "duration":
			cfg.Duration = over.Duration
		case "startup":
			cfg.Startup = over.Startup
		}
	})
	cfg.URL = *url
	cfg.Report = *report
	cfg.Seed = *seed
	cfg.Dial.Fingerprint = *fingerprint
	if *insecure {
		cfg.Dial.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	cfg.Prefix = *prefix
	if cfg.Prefix == "" {
		id := make([]byte, 4)
		_, _ = rand.Read(id)
		cfg.Prefix = "bench/" + hex.EncodeToString(id)
	}
	log, err := newLogger(*logLevel, "text", stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	if err := cfg.Validate(); err != nil {
		return err
	}

	var out *json.Encoder
	if *output != "" {
		f, err := os.OpenFile(*output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		out = json.NewEncoder(f)
	}
	var outErr error
	emit := func(r bench.Report) {
		if out != nil && outErr == nil {
			outErr = out.Encode(r)
		}
	}

	fmt.Fprintf(stdout, "moq bench: %s for %v (startup %v), prefix %s\n", cfg.URL, cfg.Duration, cfg.Startup, cfg.Prefix)
	publishers := cfg.Publishers.String()
	if cfg.Publishers.Max == 0 {
		publishers = "all"
	}
	fmt.Fprintf(stdout, "  connections %s (publishers %s), publish %s, subscribe %s, rate %s/s, size %s B, group %s, lifetime %s s\n",
		cfg.Connections, publishers, cfg.Publish, cfg.Subscribe, cfg.Rate, cfg.Size, cfg.Group, cfg.Lifetime)
	summary, err := bench.Run(ctx, cfg, func(r bench.Report) {
		fmt.Fprintln(stdout, r)
		emit(r)
	})
	if errors.Is(err, bench.ErrNoConnection) {
		return explainDial(cfg.URL, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, summary.Summary())
	emit(summary)
	if outErr != nil {
		return fmt.Errorf("writing %s: %w", *output, outErr)
	}
	return nil
}
