package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/session"
)

// scrape GETs a path of the relay's operations listener.
func scrape(t *testing.T, r *relay.Relay, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.InternalAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// metricValue returns the value of the first sample of name (with labels,
// as printed) in a Prometheus text exposition, or -1.
func metricValue(text, name string) float64 {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// waitMetric waits until a sample of the relay's metrics reaches want.
func waitMetric(ctx context.Context, t *testing.T, r *relay.Relay, name string, want float64) {
	t.Helper()
	for {
		_, text := scrape(t, r, "/metrics")
		if metricValue(text, name) >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %v", name, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestOperationsListener scrapes /metrics while a session publishes and
// another subscribes through the relay: the counters move. /health and
// /ready answer, and /debug/pprof/ is served.
func TestOperationsListener(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := startRelayWith(t, relay.Config{InternalListen: "127.0.0.1:0"})
	for _, path := range []string{"/health", "/ready", "/debug/pprof/"} {
		if code, _ := scrape(t, r, path); code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	_, before := scrape(t, r, "/metrics")

	path := moq.NewPath("ops", "live")
	broadcast, track := publishAt(t, ctx, r, path)
	defer broadcast.Close()
	waitMetric(ctx, t, r, "moq_relay_broadcasts", 1)
	sess := dial(t, ctx, r, "webtransport", session.Config{})
	sub, err := sess.ConsumeBroadcast(path).SubscribeTrack(moq.Track{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := track.Used(ctx); err != nil {
		t.Fatal(err)
	}
	for g := range 3 {
		writeGroup(t, track, g)
	}
	awaitGroup(ctx, t, sub, 2)

	// The counters are updated as the groups complete and the announcement
	// is counted: poll until they all moved.
	var after string
	for {
		_, after = scrape(t, r, "/metrics")
		if metricValue(after, "moq_relay_broadcasts") >= 1 && metricValue(after, "moq_relay_groups_out_total") >= 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the counters never moved:\n%s", after)
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, m := range []struct {
		name string
		min  float64
	}{
		{`moq_relay_sessions{transport="quic",version="moq-lite-04"}`, 1},
		{`moq_relay_sessions{transport="webtransport",version="moq-lite-04"}`, 1},
		{`moq_relay_sessions_accepted_total{transport="quic",version="moq-lite-04"}`, 1},
		{"moq_relay_subscriptions", 1},
		{"moq_relay_broadcasts", 1},
		{"moq_relay_groups_in_total", 1},
		{"moq_relay_groups_out_total", 1},
		{"moq_relay_bytes_in_total", 1},
		{"moq_relay_bytes_out_total", 1},
		{"moq_relay_cache_bytes", 1},
		{"moq_relay_handshake_seconds_count", 2},
	} {
		if got := metricValue(after, m.name); got < m.min {
			t.Errorf("%s = %v, want at least %v", m.name, got, m.min)
		}
		if got := metricValue(before, m.name); got >= m.min && !strings.HasPrefix(m.name, "moq_relay_sessions{") {
			t.Errorf("%s was already %v before the sessions", m.name, got)
		}
	}
}

// TestSessionLimits refuses the sessions past the relay's total and
// per-address limits, with a reason the client sees, and counts them.
func TestSessionLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		limits relay.Limits
		reason string
	}{
		{"total", relay.Limits{MaxSessions: 2}, "max_sessions"},
		{"per IP", relay.Limits{MaxSessionsPerIP: 2}, "max_sessions_per_ip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelayWith(t, relay.Config{Limits: tc.limits, InternalListen: "127.0.0.1:0"})
			for range 2 {
				dial(t, ctx, r, "quic", session.Config{})
			}
			// A raw QUIC Dial returns before the relay has taken the session
			// in: wait until it has both.
			waitMetric(ctx, t, r, `moq_relay_sessions{transport="quic",version="moq-lite-04"}`, 2)
			for _, transport := range []string{"webtransport", "websocket", "quic"} {
				sess, err := session.Dial(ctx, relayURL(r, transport), &session.Config{Logger: testLogger(),
					DialOptions: session.DialOptions{Fingerprint: r.Fingerprint()}})
				if err == nil {
					// Raw QUIC connects before the relay decides: the refusal
					// closes the session.
					<-sess.Done()
					err = sess.Err()
				}
				if !errors.Is(err, moq.ErrBoundsExceeded) && !strings.Contains(fmt.Sprint(err), "429") {
					t.Errorf("%s: the third session got %v, want a refusal for too many sessions", transport, err)
				}
			}
			_, text := scrape(t, r, "/metrics")
			if got := metricValue(text, `moq_relay_sessions_refused_total{reason="`+tc.reason+`"}`); got != 3 {
				t.Errorf("refusals counted: %v, want 3", got)
			}
		})
	}
}

// TestDrainMovesClients drains relay A while a Client subscribed through it
// plays a live track published at relay B: A sends GOAWAY naming B, the
// Client moves there, and every group arrives exactly once (lite-04).
// /ready turns 503 as the drain starts.
func TestDrainMovesClients(t *testing.T) {
	const total = 150
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// One certificate for both relays, as a real deployment has, so that
	// the Client trusts B as it trusts A.
	certFile, keyFile := writeCertificate(t)
	certificates := []relay.Certificate{{CertFile: certFile, KeyFile: keyFile}}
	b := startRelayWith(t, relay.Config{Certificates: certificates, Cluster: relay.ClusterConfig{NodeID: 2}})
	bURL := "moqt://127.0.0.1:" + strconv.Itoa(b.Port())
	a := startRelayWith(t, relay.Config{Certificates: certificates, InternalListen: "127.0.0.1:0",
		DrainTimeout: 10 * time.Second, DrainURL: bURL,
		Cluster: relay.ClusterConfig{NodeID: 1, Peers: []string{relayURL(b, "webtransport")},
			DialOptions: session.DialOptions{Fingerprint: b.Fingerprint()}}})
	path := moq.NewPath("drain", "live")
	logA := watchAnnounces(t, a, path)
	broadcast, track := publishAt(t, ctx, b, path)
	defer broadcast.Close()
	logA.waitFor(ctx, t, "the broadcast at A", activeWith(2))

	client, err := session.DialClient(ctx, "moqt://127.0.0.1:"+strconv.Itoa(a.Port()), &session.Config{
		Versions: []session.Version{session.Lite04}, Logger: testLogger(),
		DialOptions: session.DialOptions{Fingerprint: a.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sub, err := client.ConsumeBroadcast(path).SubscribeTrack(moq.Track{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := track.Used(ctx); err != nil {
		t.Fatal(err)
	}

	written := make(chan error, 1)
	go func() {
		ticker := time.NewTicker(3 * time.Millisecond)
		defer ticker.Stop()
		for g := range total {
			<-ticker.C
			if err := track.WriteFrame([]byte(strconv.Itoa(g))); err != nil {
				written <- err
				return
			}
			if g == total/3 {
				a.Close() // SIGTERM: the drain starts
			}
		}
		written <- nil
	}()
	seen := make(map[uint64]bool)
	for len(seen) < total {
		g, err := sub.NextGroup(ctx)
		if err != nil {
			t.Fatalf("after %d groups: %v", len(seen), err)
		}
		if seen[g.Sequence()] {
			t.Fatalf("group %d delivered twice", g.Sequence())
		}
		seen[g.Sequence()] = true
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if client.URL() != bURL {
		t.Errorf("the Client is on %s, want %s", client.URL(), bURL)
	}
}

// TestDrainReadiness drains a relay whose one session cannot receive GOAWAY
// (lite-03): /ready answers 503 while the relay waits out the drain timeout,
// and the session is then closed.
func TestDrainReadiness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := startRelayWith(t, relay.Config{InternalListen: "127.0.0.1:0", DrainTimeout: 2 * time.Second})
	sess := dial(t, ctx, r, "quic", session.Config{Versions: []session.Version{session.Lite03}})
	waitMetric(ctx, t, r, `moq_relay_sessions{transport="quic",version="moq-lite-03"}`, 1)
	start := time.Now()
	r.Close()
	for {
		code, _ := scrape(t, r, "/ready")
		if code == http.StatusServiceUnavailable {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/ready still %d after Close", code)
		case <-time.After(10 * time.Millisecond):
		}
	}
	<-sess.Done()
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("the session was closed %v after the drain began, before the 2 s drain timeout", d)
	}
}
