package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestAwaitShutdown checks that a relay slow to shut down is reported, with
// the goroutine stacks, only once the grace period has passed, and that its
// result is still returned.
func TestAwaitShutdown(t *testing.T) {
	errRun := errors.New("run result")
	tests := []struct {
		name      string
		finishIn  time.Duration // after the interrupt; negative: before it
		wantNotes bool
	}{
		{"ends before the interrupt", -time.Second, false},
		{"ends within the grace period", 14 * time.Second, false},
		{"ends after the grace period", 20 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				done := make(chan error, 1)
				var out bytes.Buffer
				result := make(chan error, 1)
				go func() { result <- awaitShutdown(ctx, done, 15*time.Second, &out) }()
				if tc.finishIn < 0 {
					done <- errRun
				} else {
					cancel()
					time.Sleep(tc.finishIn)
					synctest.Wait()
					done <- errRun
				}
				if err := <-result; !errors.Is(err, errRun) {
					t.Fatalf("awaitShutdown = %v, want the relay's result", err)
				}
				got := out.String()
				noted := strings.Contains(got, "interrupt again") && strings.Contains(got, "goroutine profile")
				if noted != tc.wantNotes {
					t.Fatalf("output %q: reported slow shutdown = %v, want %v", got, noted, tc.wantNotes)
				}
			})
		})
	}
}

// TestRelayHelpShowsLimits checks that `moq relay -h` documents every limit
// with its default, and that a limit given on the command line is parsed.
func TestRelayHelpShowsLimits(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"relay", "-h"}, nil, io.Discard, &out); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{
		"-max-streams", "(default 1024)", "-request-timeout", "-handshake-timeout", "-idle-timeout",
		"-max-subscriptions", "-max-pending-subscriptions", "-unconfirmed-rate", "-max-group-streams",
		"-max-fetches", "-max-announce-interests", "-max-announced", "-cache-age", "-cache-track-bytes",
		"-cache-total-bytes",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("moq relay -h does not mention %s:\n%s", want, out.String())
		}
	}
	var errOut strings.Builder
	if code := run(context.Background(), []string{"relay", "--max-streams", "lots"}, nil, io.Discard, &errOut); code != 2 {
		t.Errorf("a bad limit: exit code %d, want 2 (usage); stderr %q", code, errOut.String())
	}
}
