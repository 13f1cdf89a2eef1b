package bench

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
)

func startRelay(t *testing.T) *relay.Relay { return relaytest.Start(t, relay.Config{}) }

// TestRunNoLoss runs short loads through a relay on loopback and checks that
// every group arrives, with sensible measurements.
func TestRunNoLoss(t *testing.T) {
	tests := []struct {
		name   string
		scheme string
		change func(*Config)
	}{
		{"quic video", "moqt", func(c *Config) {
			c.Connections, c.Rate, c.Size, c.Group = Fixed(3), Fixed(30), Range{2000, 4000}, Fixed(10)
		}},
		{"webtransport chat", "http", func(c *Config) {
			c.Connections, c.Rate, c.Size, c.Group = Fixed(3), Range{10, 20}, Range{20, 200}, Fixed(0)
		}},
		{"fanout", "moqt", func(c *Config) {
			c.Connections, c.Publishers, c.Rate, c.Size, c.Group = Fixed(5), Fixed(1), Fixed(20), Fixed(1000), Fixed(1)
		}},
		{"churn", "moqt", func(c *Config) {
			c.Connections, c.Publish, c.Subscribe, c.Rate, c.Size, c.Group = Fixed(3), Fixed(2), Fixed(2), Fixed(20), Fixed(100), Fixed(0)
			c.Lifetime = Range{0.4, 0.8}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelay(t)
			cfg := DefaultConfig()
			cfg.URL = tc.scheme + "://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
			if tc.scheme == "moqt" {
				cfg.URL = "moqt://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port()))
				cfg.Dial.Fingerprint = r.Fingerprint()
			}
			cfg.Duration, cfg.Startup, cfg.Report = 2500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
			tc.change(&cfg)

			var (
				mu   sync.Mutex
				live []Report
			)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sum, err := Run(ctx, cfg, func(r Report) {
				mu.Lock()
				live = append(live, r)
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("summary: %+v", sum)
			if !sum.Final || sum.Connections != int(cfg.Connections.Min) || sum.ConnectionsUp != int64(sum.Connections) {
				t.Errorf("summary: final %t, %d/%d connections up", sum.Final, sum.ConnectionsUp, sum.Connections)
			}
			if sum.ConnectionErrors != 0 || sum.SubscribeErrors != 0 || sum.BadGroups != 0 {
				t.Errorf("errors: %d connection, %d subscribe, %d bad groups", sum.ConnectionErrors, sum.SubscribeErrors, sum.BadGroups)
			}
			if sum.GroupsLost != 0 || sum.GroupsReceived == 0 || sum.GroupsSent == 0 {
				t.Errorf("groups: %d sent, %d received, %d lost; want some received and none lost", sum.GroupsSent, sum.GroupsReceived, sum.GroupsLost)
			}
			if sum.SendMbps <= 0 || sum.RecvMbps <= 0 || sum.Latencies == 0 || sum.LatencyMax <= 0 || sum.LatencyP50 > sum.LatencyMax {
				t.Errorf("measurements: send %g Mbps, recv %g Mbps, %d latencies, p50 %g max %g ms",
					sum.SendMbps, sum.RecvMbps, sum.Latencies, sum.LatencyP50, sum.LatencyMax)
			}
			waitNoBroadcasts(t, r, cfg.Prefix)
			mu.Lock()
			defer mu.Unlock()
			if len(live) < 3 {
				t.Fatalf("%d live reports in 2.5 s at a 0.5 s interval", len(live))
			}
			var lost int64
			for _, r := range live {
				lost += r.GroupsLost
			}
			if lost != 0 {
				t.Errorf("live reports counted %d lost groups", lost)
			}
		})
	}
}

// waitNoBroadcasts waits until the relay announces nothing under prefix: a
// run must leave no broadcast behind.
func waitNoBroadcasts(t *testing.T, r *relay.Relay, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	view, err := r.Origin().Consume().ConsumeOnly(moq.NewPath(prefix))
	if err != nil {
		t.Fatal(err)
	}
	announced := view.Announcements()
	defer announced.Close()
	active := make(map[moq.Path]bool)
	for {
		a, ok := announced.TryNext()
		if !ok {
			if len(active) == 0 {
				return
			}
			var err error
			if a, err = announced.Next(ctx); err != nil {
				t.Fatalf("the relay still has %d broadcasts of the run: %v", len(active), active)
			}
		}
		if a.Broadcast != nil {
			active[a.Path] = true
		} else {
			delete(active, a.Path)
		}
	}
}

// TestRunUnreachable stops at once with ErrNoConnection when the relay is not there.
func TestRunUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now

	cfg := DefaultConfig()
	cfg.URL = "http://" + addr + "/"
	cfg.Duration = time.Minute
	start := time.Now()
	_, err = Run(context.Background(), cfg, nil)
	if !errors.Is(err, ErrNoConnection) {
		t.Fatalf("Run = %v, want ErrNoConnection", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v to give up", d)
	}
}

// TestRunCancel ends a run early through its context, still with a summary.
func TestRunCancel(t *testing.T) {
	r := startRelay(t)
	cfg := DefaultConfig()
	cfg.URL = "moqt://127.0.0.1:" + strconv.Itoa(r.Port())
	cfg.Dial.Fingerprint = r.Fingerprint()
	cfg.Duration, cfg.Startup, cfg.Report = time.Minute, 0, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	sum, err := Run(ctx, cfg, func(r Report) {
		if r.GroupsReceived > 0 {
			once.Do(cancel)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Final || sum.GroupsReceived == 0 || sum.GroupsLost != 0 || sum.Elapsed > 30 {
		t.Errorf("summary after cancel: %+v", sum)
	}
}
