package transporttest

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/moqgo/moq/transport"
)

// Stats checks that both ends of a pair implement transport.Stats and expose
// the connection's RTT, congestion window and byte counts once data went back
// and forth. Transports without statistics do not call it.
func Stats(t *testing.T, pair Pair) {
	client, server := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() {
		st, err := server.AcceptStream(ctx)
		if err == nil {
			_, err = io.Copy(st, st) // echo until the client finishes
			_ = st.Close()
		}
		accepted <- err
	}()
	st, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 64<<10)
	if _, err := st.Write(payload); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if n, err := io.Copy(io.Discard, st); err != nil || n != int64(len(payload)) {
		t.Fatalf("echo: %d bytes, %v", n, err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	for name, sess := range map[string]transport.Session{"client": client, "server": server} {
		s, ok := sess.(transport.Stats)
		if !ok {
			t.Fatalf("%s session does not implement transport.Stats", name)
		}
		stats := s.ConnectionStats()
		if stats.SmoothedRTT <= 0 || stats.MinRTT <= 0 || stats.LatestRTT <= 0 {
			t.Errorf("%s: no RTT samples: %+v", name, stats)
		}
		if stats.CongestionWindow == 0 {
			t.Errorf("%s: no congestion window: %+v", name, stats)
		}
		if stats.BytesSent < uint64(len(payload)) || stats.BytesReceived < uint64(len(payload)) {
			t.Errorf("%s: byte counts %d sent, %d received; want at least %d each", name, stats.BytesSent, stats.BytesReceived, len(payload))
		}
	}
}
