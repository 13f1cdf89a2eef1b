// Package relaytest runs relays for tests.
package relaytest

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/moqgo/moq/relay"
)

// Start runs a relay on a free loopback port until the test or benchmark
// ends, and fails it if the relay does not shut down cleanly. cfg.Listen is
// replaced; a nil cfg.Logger is Logger().
func Start(tb testing.TB, cfg relay.Config) *relay.Relay {
	tb.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = Logger()
	}
	r, err := relay.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	tb.Cleanup(func() {
		r.Close()
		if err := <-done; err != nil {
			tb.Errorf("relay: %v", err)
		}
	})
	return r
}

// Logger discards logs, or writes them all to stderr when the environment
// variable MOQ_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("MOQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
