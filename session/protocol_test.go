package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport"
	quictransport "github.com/moqgo/moq/transport/quic"
)

// The end-to-end tests of this file run every feature over real loopback
// QUIC sessions, once per version: the client offers only that version, so
// lite-03/04 are chosen by ALPN and lite-01/02 by a SETUP exchange under the
// "moql" ALPN. Features a version cannot express are checked to be refused
// cleanly.

func seq(v uint64) *uint64 { return &v }

// publisherServer starts a server that publishes origin to every session.
func publisherServer(t *testing.T, origin *moq.OriginProducer) *testServer {
	t.Helper()
	return startServer(t, func(*session.Request) *session.Config { return &session.Config{Publish: origin.Consume()} })
}

// writeTestGroup writes group g of track with the given number of frames,
// each holding "g<g>/f<f>".
func writeTestGroup(t *testing.T, track *moq.TrackProducer, g uint64, frames int) {
	t.Helper()
	group, err := track.CreateGroup(g)
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	for f := range frames {
		if err := group.WriteFrame(fmt.Appendf(nil, "g%d/f%d", g, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := group.Finish(); err != nil {
		t.Fatal(err)
	}
}

// readGroup reads every frame of g as strings.
func readGroup(t *testing.T, ctx context.Context, g *moq.GroupConsumer) []string {
	t.Helper()
	var out []string
	for {
		frame, err := g.ReadFrame(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("group %d: %v", g.Sequence(), err)
		}
		out = append(out, string(frame))
	}
}

// readAll reads a track to its end and returns the sequences it delivered,
// sorted, checking each group's frames.
func readAll(t *testing.T, ctx context.Context, track *moq.TrackConsumer, frames int) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		g, err := track.NextGroup(ctx)
		if errors.Is(err, io.EOF) {
			slices.Sort(seqs)
			return seqs
		}
		if err != nil {
			t.Fatalf("next group after %v: %v", seqs, err)
		}
		got := readGroup(t, ctx, g)
		if len(got) != frames || got[0] != fmt.Sprintf("g%d/f0", g.Sequence()) {
			t.Fatalf("group %d holds %q", g.Sequence(), got)
		}
		seqs = append(seqs, g.Sequence())
	}
}

// TestSubscribeOptions subscribes with every option a version carries and
// checks the publisher honours them and echoes them in SUBSCRIBE_OK:
// lite-01 echoes the priority, lite-02 nothing, lite-03/04 everything.
func TestSubscribeOptions(t *testing.T) {
	origin := moq.NewOrigin()
	track := publishTrack(t, origin, "opts", "data")
	for g := range uint64(5) {
		writeTestGroup(t, track, g, 2)
	}
	ts := publisherServer(t, origin)
	path := moq.NewPath("opts")
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			if v < session.Lite03 {
				for _, opts := range []session.SubscribeOptions{{Start: seq(1)}, {End: seq(1)}, {Ordered: true}, {MaxLatency: time.Second}} {
					if _, err := sess.Subscribe(ctx, path, "data", opts); !errors.Is(err, moq.ErrUnsupported) {
						t.Fatalf("Subscribe(%+v) = %v, want ErrUnsupported", opts, err)
					}
				}
				sub, err := sess.Subscribe(ctx, path, "data", session.SubscribeOptions{Priority: 7})
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				want := session.SubscribeOptions{}
				if v == session.Lite01 {
					want.Priority = 7
				}
				if got := sub.Info(); !sameOptions(got, want) {
					t.Errorf("SUBSCRIBE_OK %+v, want %+v", got, want)
				}
				// Without a start group, delivery starts at the newest group.
				g, err := sub.Track().NextGroup(ctx)
				if err != nil || g.Sequence() != 4 {
					t.Fatalf("first group %v, %v; want group 4", g, err)
				}
				return
			}
			opts := session.SubscribeOptions{Priority: 7, Ordered: true, MaxLatency: time.Minute, Start: seq(1), End: seq(3)}
			sub, err := sess.Subscribe(ctx, path, "data", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if got := sub.Info(); !sameOptions(got, opts) {
				t.Errorf("SUBSCRIBE_OK %+v, want %+v", got, opts)
			}
			if got := readAll(t, ctx, sub.Track(), 2); !slices.Equal(got, []uint64{1, 2, 3}) {
				t.Errorf("delivered groups %v, want [1 2 3]", got)
			}
			// The subscription ended cleanly after its end group.
			if err := sub.Track().Closed(ctx); err != nil {
				t.Errorf("track ended with %v", err)
			}
			if d, err := sub.NextDrop(ctx); !errors.Is(err, io.EOF) {
				t.Errorf("NextDrop = %+v, %v; want io.EOF", d, err)
			}
		})
	}
}

func sameOptions(a, b session.SubscribeOptions) bool {
	eq := func(x, y *uint64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Priority == b.Priority && a.Ordered == b.Ordered && a.MaxLatency == b.MaxLatency && eq(a.Start, b.Start) && eq(a.End, b.End)
}

// TestSubscribeUpdate changes live subscriptions: priority, max latency and
// an end group that ends the subscription; a lowered start group that serves
// older cached groups. lite-01/02 carry only the priority.
func TestSubscribeUpdate(t *testing.T) {
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			origin := moq.NewOrigin()
			track := publishTrack(t, origin, "upd", "data")
			ts := publisherServer(t, origin)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			path := moq.NewPath("upd")
			writeTestGroup(t, track, 0, 1)
			sub, err := sess.Subscribe(ctx, path, "data", session.SubscribeOptions{Priority: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if g, err := sub.Track().NextGroup(ctx); err != nil || g.Sequence() != 0 {
				t.Fatalf("first group %v, %v", g, err)
			}
			if v < session.Lite03 {
				if err := sub.Update(ctx, session.SubscribeOptions{Priority: 9}); err != nil {
					t.Fatalf("priority update: %v", err)
				}
				if err := sub.Update(ctx, session.SubscribeOptions{End: seq(2)}); !errors.Is(err, moq.ErrUnsupported) {
					t.Fatalf("end group update = %v, want ErrUnsupported", err)
				}
				writeTestGroup(t, track, 1, 1)
				if g, err := sub.Track().NextGroup(ctx); err != nil || g.Sequence() != 1 {
					t.Fatalf("group after the update: %v, %v", g, err)
				}
				return
			}
			changed := sub.InfoChanged()
			update := session.SubscribeOptions{Priority: 9, MaxLatency: time.Second, End: seq(2)}
			if err := sub.Update(ctx, update); err != nil {
				t.Fatal(err)
			}
			select {
			case <-changed:
			case <-ctx.Done():
				t.Fatal("no SUBSCRIBE_OK answered the update")
			}
			update.Start = seq(0)
			if got := sub.Info(); !sameOptions(got, update) {
				t.Errorf("SUBSCRIBE_OK after the update %+v, want %+v", got, update)
			}
			for g := range uint64(3) {
				writeTestGroup(t, track, g+1, 1)
			}
			if got := readAll(t, ctx, sub.Track(), 1); !slices.Equal(got, []uint64{1, 2}) {
				t.Errorf("groups after the update %v, want [1 2]: the end group ends the subscription", got)
			}

			// A lowered start group serves the cached groups below the old one.
			low, err := sess.Subscribe(ctx, path, "data", session.SubscribeOptions{Start: seq(3)})
			if err != nil {
				t.Fatal(err)
			}
			defer low.Close()
			if g, err := low.Track().NextGroup(ctx); err != nil || g.Sequence() != 3 {
				t.Fatalf("first group %v, %v; want 3", g, err)
			}
			if err := low.Update(ctx, session.SubscribeOptions{Start: seq(1), End: seq(3)}); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, ctx, low.Track(), 1); !slices.Equal(got, []uint64{1, 2}) {
				t.Errorf("groups after lowering the start %v, want [1 2]", got)
			}
		})
	}
}

// TestDropEndGroup subscribes to a range with holes: the missing groups are
// reported with SUBSCRIBE_DROP once a group past the end arrives, and the
// subscription ends.
func TestDropEndGroup(t *testing.T) {
	origin := moq.NewOrigin()
	track := publishTrack(t, origin, "holes", "data")
	for _, g := range []uint64{0, 1, 3, 5} {
		writeTestGroup(t, track, g, 1)
	}
	ts := publisherServer(t, origin)
	for _, v := range []session.Version{session.Lite03, session.Lite04} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			sub, err := sess.Subscribe(ctx, moq.NewPath("holes"), "data", session.SubscribeOptions{Start: seq(0), End: seq(4)})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if got := readAll(t, ctx, sub.Track(), 1); !slices.Equal(got, []uint64{0, 1, 3}) {
				t.Errorf("delivered %v, want [0 1 3]", got)
			}
			var drops []session.GroupDrop
			for {
				d, err := sub.NextDrop(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				drops = append(drops, d)
			}
			want := []session.GroupDrop{{Start: 2, End: 2}, {Start: 4, End: 4}}
			if !slices.Equal(drops, want) {
				t.Errorf("drops %+v, want %+v", drops, want)
			}
		})
	}
}

// liveSource writes a one-frame group to track every interval until stop
// is closed, as a live encoder does, and returns when it stops.
func liveSource(track *moq.TrackProducer, interval time.Duration, size int, stop <-chan struct{}) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	payload := make([]byte, size)
	for {
		select {
		case <-stop:
			return nil
		case <-ticker.C:
			if err := track.WriteFrame(payload); err != nil {
				return err
			}
		}
	}
}

// TestDropMaxLatency subscribes from an old group of a live track with a
// short max latency: the groups already too old are not sent but reported
// dropped with ErrOld.
func TestDropMaxLatency(t *testing.T) {
	for _, v := range []session.Version{session.Lite03, session.Lite04} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			origin := moq.NewOrigin()
			track := publishTrack(t, origin, "live", "data")
			local := track.Consume()
			defer local.Close()
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- liveSource(track, 2*time.Millisecond, 16, stop) }()
			defer func() {
				close(stop)
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			// Let the source run for at least 30 groups (60 ms or more).
			for {
				g, err := local.NextGroup(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if g.Sequence() >= 30 {
					break
				}
			}
			ts := publisherServer(t, origin)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			sub, err := sess.Subscribe(ctx, moq.NewPath("live"), "data", session.SubscribeOptions{Start: seq(0), MaxLatency: 25 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			d, err := sub.NextDrop(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d.Start != 0 || !errors.Is(d.Err, moq.ErrOld) {
				t.Errorf("first drop %+v, want group 0 dropped with ErrOld", d)
			}
			// Fresh groups still arrive, and group 0 never does.
			for {
				g, err := sub.Track().NextGroup(ctx)
				if err != nil {
					t.Fatalf("next group: %v", err)
				}
				if g.Sequence() == 0 {
					t.Fatal("the expired group 0 was delivered")
				}
				if g.Sequence() > 30 {
					break
				}
			}
		})
	}
}

// rawSession opens a raw QUIC connection to ts speaking version v by ALPN
// (lite-03/04), for tests that play a misbehaving peer.
func rawSession(t *testing.T, ctx context.Context, ts *testServer, v session.Version) transport.Session {
	t.Helper()
	trust, err := selfsign.TrustFingerprint(ts.fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	trust.NextProtos = []string{lite.Version(v).ALPN()}
	conn, err := quictransport.Dial(ctx, ts.addr, trust, quictransport.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	return conn
}

// rawSubscribe opens a subscribe stream and returns it after SUBSCRIBE_OK.
func rawSubscribe(t *testing.T, ctx context.Context, conn transport.Session, v session.Version, msg *lite.Subscribe) (transport.Stream, *wire.Reader) {
	t.Helper()
	st, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lite.AppendMessage(wire.AppendVarint(nil, uint64(lite.ControlSubscribe)), msg, lite.Version(v))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(b); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(st)
	ok, _, err := lite.ReadSubscribeResponse(r, lite.Version(v), 1<<20)
	if err != nil || ok == nil {
		t.Fatalf("SUBSCRIBE_OK: %v, %v", ok, err)
	}
	return st, r
}

// TestMaxLatencySlowReader subscribes with a 30 ms max latency and reads the
// group streams one at a time, far slower than a live source writes them:
// groups that fall behind must be reset with ErrOld rather than delivered
// late, and reported with SUBSCRIBE_DROP (ErrOld).
func TestMaxLatencySlowReader(t *testing.T) {
	for _, v := range []session.Version{session.Lite03, session.Lite04} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			origin := moq.NewOrigin()
			track := publishTrack(t, origin, "slow", "data")
			ts := publisherServer(t, origin)
			conn := rawSession(t, ctx, ts, v)
			// Reads take no context: ending the test closes the connection.
			readCtx, stopReading := context.WithCancel(ctx)
			defer context.AfterFunc(readCtx, func() { _ = conn.CloseWithError(0, "") })()
			defer stopReading()

			_, r := rawSubscribe(t, ctx, conn, v, &lite.Subscribe{Broadcast: "slow", Track: "data", MaxLatency: 30 * time.Millisecond})
			if err := track.Used(ctx); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			sourceDone := make(chan error, 1)
			go func() { sourceDone <- liveSource(track, 3*time.Millisecond, 64<<10, stop) }()
			defer func() {
				close(stop)
				if err := <-sourceDone; err != nil {
					t.Error(err)
				}
			}()

			drops := make(chan *lite.SubscribeDrop, 1024)
			var readers sync.WaitGroup
			defer readers.Wait()
			defer stopReading()
			readers.Add(2)
			go func() {
				defer readers.Done()
				defer close(drops)
				for {
					_, drop, err := lite.ReadSubscribeResponse(r, lite.Version(v), 1<<20)
					if err != nil {
						return
					}
					if drop != nil {
						drops <- drop
					}
				}
			}()
			type outcome struct {
				seq uint64
				err error
			}
			outcomes := make(chan outcome, 1<<16)
			go func() {
				defer readers.Done()
				defer close(outcomes)
				// 16 KiB every 5 ms: about 3 MB/s against the source's 20.
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					st, err := conn.AcceptUniStream(readCtx)
					if err != nil {
						return
					}
					rd := wire.NewReader(&throttled{r: st, tick: tick.C, done: readCtx.Done()})
					seqNum, err := readGroupHeader(rd)
					if err == nil {
						err = drainFrames(rd)
					}
					if readCtx.Err() != nil {
						return
					}
					outcomes <- outcome{seqNum, err}
				}
			}()

			dropped := make(map[uint64]bool)
			delivered := make(map[uint64]bool)
			resets := 0
			for len(dropped) == 0 || resets == 0 {
				select {
				case d, ok := <-drops:
					if !ok {
						t.Fatal("the subscribe stream ended")
					}
					if d.Error != uint64(lite.ErrorCode(moq.ErrOld)) {
						t.Fatalf("drop %+v, want code %d (old)", d, lite.ErrorCode(moq.ErrOld))
					}
					for g := d.Start; g <= d.End; g++ {
						dropped[g] = true
					}
				case o := <-outcomes:
					var se *transport.StreamError
					switch {
					case o.err == nil:
						delivered[o.seq] = true
					case errors.As(o.err, &se) && se.Code == lite.ErrorCode(moq.ErrOld):
						resets++
					default:
						t.Fatalf("group stream failed with %v, want a completion or a reset with code %d", o.err, lite.ErrorCode(moq.ErrOld))
					}
				case <-ctx.Done():
					t.Fatalf("after %d drops and %d resets: %v", len(dropped), resets, ctx.Err())
				}
			}
			for g := range delivered {
				if dropped[g] {
					t.Errorf("group %d was reported dropped but delivered", g)
				}
			}
		})
	}
}

// throttled reads at most 16 KiB per tick.
type throttled struct {
	r    io.Reader
	tick <-chan time.Time
	done <-chan struct{}
}

func (t *throttled) Read(p []byte) (int, error) {
	select {
	case <-t.tick:
	case <-t.done:
		return 0, context.Canceled
	}
	return t.r.Read(p[:min(len(p), 16<<10)])
}

// drainFrames reads the frames of a group stream until its end.
func drainFrames(r *wire.Reader) error {
	var buf []byte
	for {
		size, err := r.ReadVarint()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if buf, err = r.AppendN(buf[:0], int(size)); err != nil {
			return err
		}
	}
}

// readGroupHeader reads the type and GROUP header of a group stream and
// returns the group's sequence.
func readGroupHeader(r *wire.Reader) (uint64, error) {
	if _, err := r.ReadVarint(); err != nil {
		return 0, err
	}
	body, err := r.ReadMessage(1 << 10)
	if err != nil {
		return 0, err
	}
	var hdr lite.Group
	if err := hdr.DecodeBody(body, lite.Lite04); err != nil {
		return 0, err
	}
	return hdr.Sequence, nil
}

// TestFetch fetches past, empty, future and missing groups (lite-03+);
// older versions refuse FETCH.
func TestFetch(t *testing.T) {
	origin := moq.NewOrigin()
	track := publishTrack(t, origin, "vod", "data")
	for g := range uint64(4) {
		writeTestGroup(t, track, g, 2)
	}
	writeTestGroup(t, track, 4, 0)
	ts := publisherServer(t, origin)
	path := moq.NewPath("vod")
	next := uint64(5)
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			if v < session.Lite03 {
				if _, err := sess.Fetch(ctx, path, "data", 1, 0); !errors.Is(err, moq.ErrUnsupported) {
					t.Fatalf("Fetch = %v, want ErrUnsupported", err)
				}
				return
			}
			g, err := sess.Fetch(ctx, path, "data", 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got := readGroup(t, ctx, g); !slices.Equal(got, []string{"g2/f0", "g2/f1"}) || g.Sequence() != 2 {
				t.Errorf("group %d holds %q", g.Sequence(), got)
			}
			g, err = sess.Fetch(ctx, path, "data", 4, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := readGroup(t, ctx, g); len(got) != 0 {
				t.Errorf("empty group holds %q", got)
			}
			for _, c := range []struct{ path, track string }{{"vod", "nope"}, {"nope", "data"}} {
				if _, err := sess.Fetch(ctx, moq.NewPath(c.path), c.track, 0, 0); !errors.Is(err, moq.ErrNotFound) {
					t.Errorf("Fetch(%s/%s) = %v, want ErrNotFound", c.path, c.track, err)
				}
			}
			// A group newer than the latest is waited for.
			future := next
			next++
			fetched := make(chan []string, 1)
			go func() {
				g, err := sess.Fetch(ctx, path, "data", future, 0)
				if err != nil {
					t.Error(err)
					fetched <- nil
					return
				}
				fetched <- readGroup(t, ctx, g)
			}()
			writeTestGroup(t, track, future, 2)
			select {
			case got := <-fetched:
				if !slices.Equal(got, []string{fmt.Sprintf("g%d/f0", future), fmt.Sprintf("g%d/f1", future)}) {
					t.Errorf("future group holds %q", got)
				}
			case <-ctx.Done():
				t.Fatal("the fetch of a future group did not complete")
			}
		})
	}
}

// TestProbe reads the peer's bandwidth estimate: from PROBE (lite-03, with
// the RTT from lite-04) or from SESSION_INFO on the session stream
// (lite-01/02), in both directions.
func TestProbe(t *testing.T) {
	ts := startServer(t, func(*session.Request) *session.Config { return &session.Config{} })
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			var server *session.Session
			select {
			case server = <-ts.sessions:
			case <-ctx.Done():
				t.Fatal("no server session")
			}
			if sess.EstimatedSendRate() == 0 || sess.RTT() <= 0 {
				t.Errorf("local estimate %d bit/s, RTT %v; want both known", sess.EstimatedSendRate(), sess.RTT())
			}
			for name, s := range map[string]*session.Session{"client": sess, "server": server} {
				est, err := s.WaitRecvEstimate(ctx, 0)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if est.Bitrate == 0 {
					t.Errorf("%s: received a zero bitrate", name)
				}
				if wantRTT := v >= session.Lite04; (est.RTT > 0) != wantRTT {
					t.Errorf("%s: received RTT %v; want one only from lite-04 on", name, est.RTT)
				}
			}
		})
	}
}

// listenAgain serves ts's server on a second loopback socket, with the same
// certificate, and returns its address.
func listenAgain(t *testing.T, ts *testServer) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ts.srv.Serve(pc)
	}()
	t.Cleanup(func() {
		_ = ts.srv.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// dialClient connects a Client over raw QUIC offering versions (nil: all),
// closed at the end of the test.
func (ts *testServer) dialClient(t *testing.T, ctx context.Context, versions []session.Version, opts ...session.ClientOption) *session.Client {
	t.Helper()
	cfg := session.Config{Versions: versions, Logger: testLogger()}
	cfg.Fingerprint = ts.fingerprint
	client, err := session.DialClient(ctx, ts.url("quic"), &cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// followTrack subscribes client to track, published at "live", and waits
// until the publisher sees the subscription.
func followTrack(t *testing.T, ctx context.Context, client *session.Client, track *moq.TrackProducer) *moq.TrackConsumer {
	t.Helper()
	consumer, err := client.ConsumeBroadcast(moq.NewPath("live")).SubscribeTrack(moq.Track{Name: track.Info().Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(consumer.Close)
	if err := track.Used(ctx); err != nil {
		t.Fatal(err)
	}
	return consumer
}

// playLive is a live source: it writes groups 0..total-1 of track, one frame
// "g<g>/f0" each, every 2 ms, and calls event once group total/3 is out. The
// channel gets the first error, or nil at the end.
func playLive(track *moq.TrackProducer, total int, event func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		ticker := time.NewTicker(2 * time.Millisecond)
		defer ticker.Stop()
		for g := range uint64(total) {
			<-ticker.C
			if err := track.WriteFrame(fmt.Appendf(nil, "g%d/f0", g)); err != nil {
				done <- err
				return
			}
			if g == uint64(total/3) {
				if err := event(); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	return done
}

// receiveLive reads playLive's groups until enough holds for the groups
// seen, failing on a group delivered twice or with the wrong content.
func receiveLive(t *testing.T, ctx context.Context, consumer *moq.TrackConsumer, enough func(seen map[uint64]bool) bool) map[uint64]bool {
	t.Helper()
	seen := make(map[uint64]bool)
	for !enough(seen) {
		g, err := consumer.NextGroup(ctx)
		if err != nil {
			t.Fatalf("after %d groups: %v", len(seen), err)
		}
		if seen[g.Sequence()] {
			t.Fatalf("group %d delivered twice", g.Sequence())
		}
		if got := readGroup(t, ctx, g); len(got) != 1 || got[0] != fmt.Sprintf("g%d/f0", g.Sequence()) {
			t.Fatalf("group %d holds %q", g.Sequence(), got)
		}
		seen[g.Sequence()] = true
	}
	return seen
}

// TestGoAwayReconnect has the server send GOAWAY to another address while a
// live track plays: the Client moves there and the TrackConsumer obtained
// before keeps receiving, every group exactly once. Before lite-04 the
// server cannot send GOAWAY.
func TestGoAwayReconnect(t *testing.T) {
	const total = 60
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			origin := moq.NewOrigin()
			track := publishTrack(t, origin, "live", "data")
			ts := publisherServer(t, origin)
			other := "moqt://" + listenAgain(t, ts)
			client := ts.dialClient(t, ctx, []session.Version{v})
			var first *session.Session
			select {
			case first = <-ts.sessions:
			case <-ctx.Done():
				t.Fatal("no server session")
			}
			consumer := followTrack(t, ctx, client, track)

			if v < session.Lite04 {
				if err := first.GoAway(ctx, other); !errors.Is(err, moq.ErrUnsupported) {
					t.Fatalf("GoAway = %v, want ErrUnsupported", err)
				}
				writeTestGroup(t, track, 0, 1)
				if g, err := consumer.NextGroup(ctx); err != nil || g.Sequence() != 0 {
					t.Fatalf("the session did not survive the refused GOAWAY: %v, %v", g, err)
				}
				return
			}

			// A live source writes groups 0..total-1, and the server sends
			// GOAWAY once a third of them are out.
			goaway := make(chan error, 1)
			writer := playLive(track, total, func() error {
				go func() { goaway <- first.GoAway(ctx, other) }()
				return nil
			})
			receiveLive(t, ctx, consumer, func(seen map[uint64]bool) bool { return len(seen) == total })
			if err := <-writer; err != nil {
				t.Fatal(err)
			}
			if err := <-goaway; err != nil {
				t.Fatalf("GoAway: %v", err)
			}
			if client.URL() != other {
				t.Errorf("client at %s, want %s", client.URL(), other)
			}
			select {
			case <-first.Done():
			default:
				t.Error("the first session is still open")
			}
		})
	}
}

// TestClientReconnect ends the server's session while a live track plays,
// with an error and cleanly: a Client dialed with Reconnect dials again and
// its TrackConsumer goes on. From lite-03 on it resumes after the newest
// group it had, so every group arrives exactly once; older versions restart
// at the publisher's newest group, so groups may be missed but none repeats.
func TestClientReconnect(t *testing.T) {
	const total = 60
	ends := []struct {
		name string
		end  func(*session.Session) error
	}{
		{"error", func(s *session.Session) error { return s.CloseWithError(moq.ErrTransport) }},
		{"clean", func(s *session.Session) error { return s.Close() }},
	}
	for _, v := range session.DefaultVersions {
		for _, end := range ends {
			t.Run(v.String()+"/"+end.name, func(t *testing.T) {
				ctx := testContext(t)
				origin := moq.NewOrigin()
				track := publishTrack(t, origin, "live", "data")
				ts := publisherServer(t, origin)
				client := ts.dialClient(t, ctx, []session.Version{v}, session.Reconnect(session.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}))
				first := <-ts.sessions
				consumer := followTrack(t, ctx, client, track)
				writer := playLive(track, total, func() error { return end.end(first) })
				seen := receiveLive(t, ctx, consumer, func(seen map[uint64]bool) bool { return seen[total-1] })
				if err := <-writer; err != nil {
					t.Fatal(err)
				}
				if v >= session.Lite03 && len(seen) != total {
					t.Errorf("%d of %d groups arrived; from lite-03 on the Client resumes without a gap", len(seen), total)
				}
				select {
				case <-client.Done():
					t.Fatalf("the Client ended: %v", client.Err())
				default:
				}
				select {
				case <-ts.sessions:
				case <-ctx.Done():
					t.Fatal("the Client did not connect a second session")
				}
			})
		}
	}
}

// TestClientReconnectGivesUp checks that a Client whose reconnection attempts
// all fail ends with the last error after Backoff.Attempts.
func TestClientReconnectGivesUp(t *testing.T) {
	ctx := testContext(t)
	var accepted atomic.Int32
	ts := startServer(t, func(*session.Request) *session.Config {
		if accepted.Add(1) > 1 {
			return nil // refused: every reconnection fails
		}
		return &session.Config{}
	})
	client := ts.dialClient(t, ctx, nil, session.Reconnect(session.Backoff{Min: time.Millisecond, Max: time.Second, Attempts: 3}))
	_ = (<-ts.sessions).CloseWithError(moq.ErrTransport)
	select {
	case <-client.Done():
	case <-ctx.Done():
		t.Fatal("the Client kept trying")
	}
	if err := client.Err(); err == nil || !errors.Is(err, moq.ErrUnauthorized) {
		t.Fatalf("Client.Err() = %v, want the refusal after the last attempt", err)
	}
	if n := accepted.Load(); n != 4 {
		t.Errorf("%d session requests, want 1 + 3 attempts", n)
	}
}

// TestAnnounceHops checks the hop lists each version carries and the loop
// rules of lite-04: a node ignores announcements whose hops hold its id,
// appends its id to what it announces, and does not announce back what came
// through the peer (exclude_hop). lite-03 carries only the hop count.
func TestAnnounceHops(t *testing.T) {
	const serverID, clientID = 7, 5
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			serverOrigin := moq.NewOrigin()
			publishHops(t, serverOrigin, "down/excluded", clientID)
			publishHops(t, serverOrigin, "down/kept", 9)
			serverView := watch(t, must(serverOrigin.Consume().ConsumeOnly(moq.NewPath("up"))))
			serverPublish := must(serverOrigin.Consume().ConsumeOnly(moq.NewPath("down")))
			ts := startServer(t, func(*session.Request) *session.Config {
				return &session.Config{Publish: serverPublish, Consume: serverOrigin, NodeID: serverID}
			})

			clientOrigin := moq.NewOrigin()
			publishHops(t, clientOrigin, "up/loop", serverID)
			publishHops(t, clientOrigin, "up/plain", 3)
			clientView := watch(t, must(clientOrigin.Consume().ConsumeOnly(moq.NewPath("down"))))
			ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}, NodeID: clientID,
				Publish: must(clientOrigin.Consume().ConsumeOnly(moq.NewPath("up"))), Consume: must(clientOrigin.PublishOnly(moq.NewPath("down")))})

			// What reached each side, up to the broadcast announced last.
			serverGot := announcedUntil(t, ctx, serverView, moq.NewPath("up/plain"))
			clientGot := announcedUntil(t, ctx, clientView, moq.NewPath("down/kept"))

			want := func(ids ...uint64) []uint64 {
				switch {
				case v < session.Lite03:
					return nil
				case v == session.Lite03:
					return make([]uint64, len(ids)) // the count only
				}
				return ids
			}
			check := func(side string, got map[moq.Path][]uint64, path string, wantHops []uint64, present bool) {
				t.Helper()
				hops, ok := got[moq.NewPath(path)]
				switch {
				case ok != present:
					t.Errorf("%s: %s announced = %v, want %v", side, path, ok, present)
				case ok && !slices.Equal(hops, wantHops):
					t.Errorf("%s: %s hops %v, want %v", side, path, hops, wantHops)
				}
			}
			loops := v >= session.Lite04 // only hop ids can detect a loop
			check("server", serverGot, "up/plain", want(3, clientID), true)
			check("server", serverGot, "up/loop", want(serverID, clientID), !loops)
			check("client", clientGot, "down/kept", want(9, serverID), true)
			check("client", clientGot, "down/excluded", want(clientID, serverID), !loops)
		})
	}
}

// publishHops publishes an empty broadcast at path that came through hops.
func publishHops(t *testing.T, origin *moq.OriginProducer, path string, hops ...uint64) {
	t.Helper()
	b := moq.NewBroadcast()
	b.SetHops(hops)
	if err := origin.PublishBroadcast(moq.NewPath(path), b.Consume()); err != nil {
		t.Fatalf("cannot publish %s: %v", path, err)
	}
	t.Cleanup(b.Close)
}

// announcedUntil collects the broadcasts announced to c, with their hops,
// until last is announced.
func announcedUntil(t *testing.T, ctx context.Context, c *moq.Announcements, last moq.Path) map[moq.Path][]uint64 {
	t.Helper()
	got := make(map[moq.Path][]uint64)
	for {
		a, err := c.Next(ctx)
		if err != nil {
			paths := make([]string, 0, len(got))
			for p := range got {
				paths = append(paths, string(p))
			}
			sort.Strings(paths)
			t.Fatalf("waiting for %s (got %v): %v", last, paths, err)
		}
		if a.Broadcast == nil {
			continue
		}
		got[a.Path] = a.Broadcast.Hops()
		if a.Path == last {
			return got
		}
	}
}

// TestSubscribeNotFound fails a subscription to a missing broadcast or track
// at once, for a Session and for a Client alike.
func TestSubscribeNotFound(t *testing.T) {
	origin := moq.NewOrigin()
	publishTrack(t, origin, "here", "data")
	ts := publisherServer(t, origin)
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			sess := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}})
			for _, c := range []struct{ path, track string }{{"nope", "data"}, {"here", "nope"}} {
				if _, err := sess.Subscribe(ctx, moq.NewPath(c.path), c.track, session.SubscribeOptions{}); !errors.Is(err, moq.ErrNotFound) {
					t.Errorf("Subscribe(%s/%s) = %v, want ErrNotFound", c.path, c.track, err)
				}
			}
			client := ts.dialClient(t, ctx, []session.Version{v})
			track, err := client.ConsumeBroadcast(moq.NewPath("nope")).SubscribeTrack(moq.Track{Name: "data"})
			if err != nil {
				t.Fatal(err)
			}
			defer track.Close()
			if g, err := track.NextGroup(ctx); !errors.Is(err, moq.ErrNotFound) {
				t.Errorf("Client track: %v, %v; want ErrNotFound", g, err)
			}
		})
	}
}
