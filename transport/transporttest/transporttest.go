// Package transporttest is a conformance suite for [transport.Session]
// implementations. Each transport package runs it against real connected
// sessions so that the layers above can rely on identical behaviour: stream
// FIN and reset semantics, STOP_SENDING, session close codes and reasons, and
// context cancellation.
package transporttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/transport"
)

// Pair returns two connected sessions: client dialed server. The
// implementation must release everything it created (listeners, sessions,
// sockets) through tb.Cleanup; the suite additionally closes both sessions
// at the end of every test, so CloseWithError is called more than once.
type Pair func(tb testing.TB) (client, server transport.Session)

// Timeout bounds each conformance test. When it expires both sessions are
// closed, which unblocks every pending operation and fails the test.
const Timeout = 30 * time.Second

// Run runs the conformance suite, each test on a fresh pair of sessions. It
// checks that:
//   - both sides report the same Protocol and non-nil addresses;
//   - data crosses bidirectional and unidirectional streams intact in both
//     directions, beyond flow-control windows and in full duplex, ending in
//     io.EOF after Close (FIN);
//   - hundreds of concurrent unidirectional streams can be opened;
//   - CancelWrite reaches the reader as *transport.StreamError{Code, Remote:
//     true}, and the writer's Context is done and its Write fails with
//     Remote false;
//   - CancelRead cancels the writer's Context and fails its Write with
//     *transport.StreamError{Code, Remote: true};
//   - Close and CancelWrite cancel the send Context, and Write after Close fails;
//   - CloseWithError is idempotent, cancels both Contexts with a
//     *transport.SessionError carrying the code and reason (Remote as seen
//     from each side), and fails pending and later Reads, Accepts and Opens
//     with the same error;
//   - Accept calls honour their context;
//   - SetPriority accepts any value without disturbing the data.
func Run(t *testing.T, pair Pair) {
	tests := []struct {
		name string
		fn   func(t *testing.T, client, server transport.Session)
	}{
		{"Metadata", testMetadata},
		{"BidiEcho", testBidiEcho},
		{"UniTransfer", testUniTransfer},
		{"FullDuplex", testFullDuplex},
		{"ConcurrentUniStreams", testConcurrentUniStreams},
		{"ResetByWriter", testResetByWriter},
		{"StopSending", testStopSending},
		{"SendContext", testSendContext},
		{"WriteAfterClose", testWriteAfterClose},
		{"SessionCloseByClient", sessionClose(true, 3, "bye")},
		{"SessionCloseByServer", sessionClose(false, 0x1234, "going away")},
		{"AcceptContext", testAcceptContext},
		{"Priority", testPriority},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := newPair(t, pair)
			tc.fn(t, client, server)
		})
	}
}

// newPair creates a pair, arms the watchdog and closes both sessions when
// the test ends.
func newPair(t *testing.T, pair Pair) (client, server transport.Session) {
	t.Helper()
	client, server = pair(t)
	if client == nil || server == nil {
		t.Fatal("pair returned a nil session")
	}
	var fired atomic.Bool
	timer := time.AfterFunc(Timeout, func() {
		fired.Store(true)
		_ = client.CloseWithError(0, "transporttest: timeout")
		_ = server.CloseWithError(0, "transporttest: timeout")
	})
	t.Cleanup(func() {
		timer.Stop()
		if fired.Load() {
			t.Errorf("test did not finish within %v", Timeout)
		}
		_ = client.CloseWithError(0, "")
		_ = server.CloseWithError(0, "")
	})
	return client, server
}

// async runs fn in a goroutine and returns a channel that receives its result.
func async(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// wait receives from ch, failing the test if nothing arrives within Timeout.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Timeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// waitDone waits until ctx is done, failing the test after Timeout.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(Timeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// payload returns n deterministic bytes derived from seed.
func payload(seed uint32, n int) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// openStream opens a stream from one side, writes first (streams become
// visible to the peer only once data is sent) and accepts it on the other.
func openStream(t *testing.T, opener, acceptor transport.Session, first []byte) (transport.Stream, transport.Stream) {
	t.Helper()
	ctx := t.Context()
	out, err := opener.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	if _, err := out.Write(first); err != nil {
		t.Fatalf("Write: %v", err)
	}
	in, err := acceptor.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	return out, in
}

// openUni is openStream for unidirectional streams.
func openUni(t *testing.T, opener, acceptor transport.Session, first []byte) (transport.SendStream, transport.ReceiveStream) {
	t.Helper()
	ctx := t.Context()
	out, err := opener.OpenUniStream(ctx)
	if err != nil {
		t.Fatalf("OpenUniStream: %v", err)
	}
	if _, err := out.Write(first); err != nil {
		t.Fatalf("Write: %v", err)
	}
	in, err := acceptor.AcceptUniStream(ctx)
	if err != nil {
		t.Fatalf("AcceptUniStream: %v", err)
	}
	return out, in
}

// direction is one way of opening a stream.
type direction struct {
	name             string
	opener, acceptor transport.Session
}

// directions lists both ways a stream can be opened.
func directions(client, server transport.Session) []direction {
	return []direction{
		{"client-opens", client, server},
		{"server-opens", server, client},
	}
}

var sizes = []struct {
	name string
	n    int
}{
	{"small", 5},
	{"large", 3<<20 + 17}, // well beyond the initial flow-control windows
}

func testMetadata(t *testing.T, client, server transport.Session) {
	if got, want := client.Protocol(), server.Protocol(); got != want {
		t.Errorf("client Protocol() = %q, server Protocol() = %q", got, want)
	}
	for _, s := range []struct {
		name string
		sess transport.Session
	}{{"client", client}, {"server", server}} {
		if s.sess.LocalAddr() == nil || s.sess.RemoteAddr() == nil {
			t.Errorf("%s: LocalAddr() = %v, RemoteAddr() = %v, want non-nil", s.name, s.sess.LocalAddr(), s.sess.RemoteAddr())
		}
		select {
		case <-s.sess.Context().Done():
			t.Errorf("%s: Context done on an open session: %v", s.name, context.Cause(s.sess.Context()))
		default:
		}
	}
}

func testBidiEcho(t *testing.T, client, server transport.Session) {
	for _, dir := range directions(client, server) {
		for _, size := range sizes {
			t.Run(dir.name+"/"+size.name, func(t *testing.T) {
				data := payload(uint32(size.n), size.n)
				out, in := openStream(t, dir.opener, dir.acceptor, data[:1])
				echoed := async(func() error {
					got, err := io.ReadAll(in)
					if err != nil {
						return fmt.Errorf("acceptor ReadAll: %w", err)
					}
					if _, err := in.Write(got); err != nil {
						return fmt.Errorf("acceptor Write: %w", err)
					}
					return in.Close()
				})
				if _, err := out.Write(data[1:]); err != nil {
					t.Fatalf("opener Write: %v", err)
				}
				if err := out.Close(); err != nil {
					t.Fatalf("opener Close: %v", err)
				}
				got, err := io.ReadAll(out)
				if err != nil {
					t.Fatalf("opener ReadAll: %v", err)
				}
				if err := wait(t, echoed, "echo"); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("echo returned %d bytes that differ from the %d sent", len(got), len(data))
				}
			})
		}
	}
}

func testUniTransfer(t *testing.T, client, server transport.Session) {
	for _, dir := range directions(client, server) {
		for _, size := range sizes {
			t.Run(dir.name+"/"+size.name, func(t *testing.T) {
				data := payload(uint32(size.n)+7, size.n)
				out, in := openUni(t, dir.opener, dir.acceptor, data[:1])
				sent := async(func() error {
					if _, err := out.Write(data[1:]); err != nil {
						return fmt.Errorf("write: %w", err)
					}
					return out.Close()
				})
				got, err := io.ReadAll(in)
				if err != nil {
					t.Fatalf("ReadAll: %v", err)
				}
				if err := wait(t, sent, "send"); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
				}
				// A finished stream keeps reporting EOF.
				if n, err := in.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
				}
			})
		}
	}
}

// testFullDuplex streams data through an echoing peer while reading the echo
// concurrently, exercising flow control in both directions at once.
func testFullDuplex(t *testing.T, client, server transport.Session) {
	const total = 4 << 20
	data := payload(99, total)
	out, in := openStream(t, client, server, data[:1024])
	echoed := async(func() error {
		if _, err := io.Copy(in, in); err != nil {
			return fmt.Errorf("echo copy: %w", err)
		}
		return in.Close()
	})
	sent := async(func() error {
		for off := 1024; off < total; off += 64 << 10 {
			if _, err := out.Write(data[off:min(off+64<<10, total)]); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		return out.Close()
	})
	got, err := io.ReadAll(out)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if err := wait(t, sent, "send"); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, echoed, "echo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo returned %d bytes that differ from the %d sent", len(got), len(data))
	}
}

// testConcurrentUniStreams opens more unidirectional streams at once than
// default QUIC stream limits allow, like a publisher sending one group per
// stream.
func testConcurrentUniStreams(t *testing.T, client, server transport.Session) {
	const streams = 300
	ctx := t.Context()
	results := make(chan error, streams)
	for i := range streams {
		go func() {
			results <- func() error {
				s, err := client.OpenUniStream(ctx)
				if err != nil {
					return fmt.Errorf("OpenUniStream %d: %w", i, err)
				}
				msg := binary.BigEndian.AppendUint32(nil, uint32(i))
				msg = append(msg, payload(uint32(i), 1000+i)...)
				if _, err := s.Write(msg); err != nil {
					return fmt.Errorf("write on stream %d: %w", i, err)
				}
				return s.Close()
			}()
		}()
	}
	seen := make([]bool, streams)
	for _, got := range readUniStreams(t, server, streams) {
		if len(got) < 4 {
			t.Fatalf("stream carried %d bytes, want at least 4", len(got))
		}
		i := binary.BigEndian.Uint32(got)
		if i >= streams || seen[i] {
			t.Fatalf("unexpected or duplicate stream index %d", i)
		}
		seen[i] = true
		if want := payload(i, 1000+int(i)); !bytes.Equal(got[4:], want) {
			t.Fatalf("stream %d: payload differs", i)
		}
	}
	for range streams {
		if err := wait(t, results, "stream writers"); err != nil {
			t.Fatal(err)
		}
	}
}

// readUniStreams accepts n unidirectional streams and reads them to EOF
// concurrently, as a receiver must: reading one stream at a time can
// deadlock on connection-level flow control.
func readUniStreams(t *testing.T, sess transport.Session, n int) [][]byte {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	results := make(chan result, n)
	for range n {
		in, err := sess.AcceptUniStream(t.Context())
		if err != nil {
			t.Fatalf("AcceptUniStream: %v", err)
		}
		go func() {
			data, err := io.ReadAll(in)
			results <- result{data, err}
		}()
	}
	out := make([][]byte, 0, n)
	for range n {
		r := wait(t, results, "stream readers")
		if r.err != nil {
			t.Fatalf("ReadAll: %v", r.err)
		}
		out = append(out, r.data)
	}
	return out
}

func wantStreamError(t *testing.T, err error, code uint32, remote bool, what string) {
	t.Helper()
	var se *transport.StreamError
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %v (%T) is not a *transport.StreamError", what, err, err)
	}
	if se.Code != code || se.Remote != remote {
		t.Fatalf("%s: got StreamError{Code: %d, Remote: %t}, want {Code: %d, Remote: %t}", what, se.Code, se.Remote, code, remote)
	}
}

func wantSessionError(t *testing.T, err error, code uint32, reason string, remote bool, what string) {
	t.Helper()
	var se *transport.SessionError
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %v (%T) is not a *transport.SessionError", what, err, err)
	}
	if se.Code != code || se.Reason != reason || se.Remote != remote {
		t.Fatalf("%s: got SessionError{Code: %d, Reason: %q, Remote: %t}, want {Code: %d, Reason: %q, Remote: %t}",
			what, se.Code, se.Reason, se.Remote, code, reason, remote)
	}
}

// testResetByWriter checks that CancelWrite reaches the reader as a
// StreamError carrying the code, distinct from a FIN.
func testResetByWriter(t *testing.T, client, server transport.Session) {
	const code = 42
	kinds := []struct {
		name string
		open func(t *testing.T) (transport.SendStream, transport.ReceiveStream)
	}{
		{"uni", func(t *testing.T) (transport.SendStream, transport.ReceiveStream) {
			return openUni(t, client, server, []byte("partial"))
		}},
		{"bidi", func(t *testing.T) (transport.SendStream, transport.ReceiveStream) {
			return openStream(t, client, server, []byte("partial"))
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			out, in := k.open(t)
			buf := make([]byte, len("partial"))
			if _, err := io.ReadFull(in, buf); err != nil {
				t.Fatalf("ReadFull before reset: %v", err)
			}
			out.CancelWrite(code)
			waitDone(t, out.Context(), "sender Context after CancelWrite")
			_, err := out.Write([]byte("more"))
			wantStreamError(t, err, code, false, "Write after CancelWrite")

			_, err = io.ReadAll(in)
			wantStreamError(t, err, code, true, "reader after peer reset")
		})
	}
}

// testStopSending checks that CancelRead on the receiver cancels the
// sender's Context and fails its writes with the code.
func testStopSending(t *testing.T, client, server transport.Session) {
	const code = 7
	kinds := []struct {
		name string
		open func(t *testing.T) (transport.SendStream, transport.ReceiveStream)
	}{
		{"uni", func(t *testing.T) (transport.SendStream, transport.ReceiveStream) {
			return openUni(t, client, server, []byte("x"))
		}},
		{"bidi", func(t *testing.T) (transport.SendStream, transport.ReceiveStream) {
			return openStream(t, client, server, []byte("x"))
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			out, in := k.open(t)
			if _, err := io.ReadFull(in, make([]byte, 1)); err != nil {
				t.Fatalf("ReadFull: %v", err)
			}
			in.CancelRead(code)
			waitDone(t, out.Context(), "sender Context after peer CancelRead")
			_, err := out.Write([]byte("more"))
			wantStreamError(t, err, code, true, "Write after peer CancelRead")
		})
	}
}

func testSendContext(t *testing.T, client, server transport.Session) {
	t.Run("Close", func(t *testing.T) {
		out, in := openUni(t, client, server, []byte("x"))
		if err := out.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		waitDone(t, out.Context(), "Context after Close")
		got, err := io.ReadAll(in)
		if err != nil || string(got) != "x" {
			t.Fatalf("ReadAll = %q, %v; want \"x\", nil", got, err)
		}
	})
	t.Run("CancelWrite", func(t *testing.T) {
		out, _ := openStream(t, client, server, []byte("x"))
		out.CancelWrite(1)
		waitDone(t, out.Context(), "Context after CancelWrite")
	})
	t.Run("Open", func(t *testing.T) {
		out, _ := openStream(t, client, server, []byte("x"))
		select {
		case <-out.Context().Done():
			t.Fatalf("Context of an open stream is done: %v", context.Cause(out.Context()))
		default:
		}
	})
}

func testWriteAfterClose(t *testing.T, client, server transport.Session) {
	out, in := openUni(t, client, server, []byte("x"))
	if err := out.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := out.Write([]byte("y")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	got, err := io.ReadAll(in)
	if err != nil || string(got) != "x" {
		t.Fatalf("ReadAll = %q, %v; want \"x\", nil", got, err)
	}
}

// sessionClose returns a test in which one side closes the session with a
// code and reason while the peer has a pending Read and a pending Accept.
func sessionClose(byClient bool, code uint32, reason string) func(t *testing.T, client, server transport.Session) {
	return func(t *testing.T, client, server transport.Session) {
		closer, peer := server, client
		if byClient {
			closer, peer = client, server
		}
		_, peerStream := openStream(t, closer, peer, []byte("x"))
		if _, err := io.ReadFull(peerStream, make([]byte, 1)); err != nil {
			t.Fatalf("ReadFull: %v", err)
		}
		pendingRead := async(func() error {
			_, err := peerStream.Read(make([]byte, 1))
			return err
		})
		pendingAccept := async(func() error {
			_, err := peer.AcceptStream(context.Background())
			return err
		})

		if err := closer.CloseWithError(code, reason); err != nil {
			t.Fatalf("CloseWithError: %v", err)
		}
		if err := closer.CloseWithError(code+1, "again"); err != nil {
			t.Fatalf("second CloseWithError: %v", err)
		}

		waitDone(t, closer.Context(), "closer Context")
		wantSessionError(t, context.Cause(closer.Context()), code, reason, false, "closer Context cause")
		waitDone(t, peer.Context(), "peer Context")
		wantSessionError(t, context.Cause(peer.Context()), code, reason, true, "peer Context cause")

		wantSessionError(t, wait(t, pendingRead, "pending Read"), code, reason, true, "pending Read on peer")
		wantSessionError(t, wait(t, pendingAccept, "pending AcceptStream"), code, reason, true, "pending AcceptStream on peer")

		_, err := closer.OpenStream(t.Context())
		wantSessionError(t, err, code, reason, false, "OpenStream after CloseWithError")
		_, err = closer.OpenUniStream(t.Context())
		wantSessionError(t, err, code, reason, false, "OpenUniStream after CloseWithError")
		_, err = peer.AcceptUniStream(t.Context())
		wantSessionError(t, err, code, reason, true, "AcceptUniStream on closed peer")
	}
}

func testAcceptContext(t *testing.T, client, server transport.Session) {
	for _, s := range []struct {
		name string
		sess transport.Session
	}{{"client", client}, {"server", server}} {
		t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			bidi := async(func() error {
				_, err := s.sess.AcceptStream(ctx)
				return err
			})
			uni := async(func() error {
				_, err := s.sess.AcceptUniStream(ctx)
				return err
			})
			cancel()
			if err := wait(t, bidi, "AcceptStream"); !errors.Is(err, context.Canceled) {
				t.Errorf("AcceptStream after cancel = %v, want context.Canceled", err)
			}
			if err := wait(t, uni, "AcceptUniStream"); !errors.Is(err, context.Canceled) {
				t.Errorf("AcceptUniStream after cancel = %v, want context.Canceled", err)
			}
			select {
			case <-s.sess.Context().Done():
				t.Errorf("session closed by a cancelled accept: %v", context.Cause(s.sess.Context()))
			default:
			}
		})
	}
}

// testPriority sets every urgency, including out-of-range values, and checks
// that data still arrives intact.
func testPriority(t *testing.T, client, server transport.Session) {
	urgencies := []int{-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1000}
	ctx := t.Context()
	sent := make(chan error, len(urgencies))
	for i, u := range urgencies {
		s, err := client.OpenUniStream(ctx)
		if err != nil {
			t.Fatalf("OpenUniStream: %v", err)
		}
		s.SetPriority(u)
		go func() {
			sent <- func() error {
				msg := append([]byte{byte(i)}, payload(uint32(i), 200<<10)...)
				if _, err := s.Write(msg); err != nil {
					return err
				}
				s.SetPriority(7 - u)
				return s.Close()
			}()
		}()
	}
	for _, got := range readUniStreams(t, server, len(urgencies)) {
		if len(got) == 0 || int(got[0]) >= len(urgencies) || !bytes.Equal(got[1:], payload(uint32(got[0]), 200<<10)) {
			t.Fatalf("stream payload corrupted (%d bytes)", len(got))
		}
	}
	for range urgencies {
		if err := wait(t, sent, "writers"); err != nil {
			t.Fatal(err)
		}
	}
}
