// Package interop drives the official @moq/lite client (Node, over WebSocket
// with @moq/qmux) against the moqgo relay, in every framing and version the
// client can use: its default (no protocol, SETUP → moq-lite-02) and forced
// moq-lite-03 and moq-lite-04, over qmux-00 and the legacy "webtransport"
// WebSocket framing.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport/qmux"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	interopGroups = 200
	interopFrames = 10
)

var interopTracks = []string{"t0", "t1", "t2"}

// versions are the ways the JS client connects: its default negotiation and
// the two ALPN versions forced through a ready qmux session.
var versions = []struct{ mode, want string }{
	{"setup", "moq-lite-02"},
	{"moq-lite-03", "moq-lite-03"},
	{"moq-lite-04", "moq-lite-04"},
}

// framings are the WebSocket framings the relay is told to prefer.
var framings = []struct {
	name string
	pref []qmux.Framing
}{
	{"qmux-00", []qmux.Framing{qmux.QMux00}},
	{"webtransport", []qmux.Framing{qmux.WebTransport}},
}

func TestInterop(t *testing.T) {
	node := requireNode(t)
	moqBin := buildCLI(t)
	for _, framing := range framings {
		r := startRelay(t, framing.pref)
		for _, v := range versions {
			env := &env{t: t, node: node, moq: moqBin, relay: r, mode: v.mode, version: v.want}
			suffix := "/" + framing.name + "/" + v.mode
			t.Run("js-publish"+suffix, env.run(testJSPublish))
			t.Run("go-publish"+suffix, env.run(testGoPublish))
			t.Run("cli-publish"+suffix, env.run(testCLIPublish))
			t.Run("js-announced"+suffix, env.run(testJSAnnounced))
			t.Run("js-missing"+suffix, env.run(testJSMissing))
		}
	}
}

// requireNode finds node and the installed packages. Without them the test
// is skipped with the way to run it, except under CI where that is a
// failure.
func requireNode(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: the interop suite is required under CI", what)
		}
		t.Skipf("%s: the interop suite is skipped (.ci/run installs what it needs and runs it)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found; install Node.js and npm")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@moq", "lite", "package.json")); err != nil {
		missing("@moq/lite is not installed; run `npm ci` in tests/interop")
	}
	return node
}

// buildCLI builds the moq command for the cli-publish scenario.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moq")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/moq").CombinedOutput()
	if err != nil {
		t.Fatalf("building cmd/moq: %v\n%s", err, out)
	}
	return bin
}

func testLogger() *slog.Logger { return relaytest.Logger() }

func startRelay(t *testing.T, framings []qmux.Framing) *relay.Relay {
	return relaytest.Start(t, relay.Config{WebSocketFramings: framings})
}

// env is one cell of the matrix: a relay (with its framing) and a JS mode.
type env struct {
	t       *testing.T
	node    string
	moq     string
	relay   *relay.Relay
	mode    string // how the JS client connects
	version string // the version it must end up on
	n       int    // scenarios run, for unique broadcast names
}

func (e *env) run(scenario func(*testing.T, *env, context.Context)) func(*testing.T) {
	return func(t *testing.T) {
		e.n++
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		scenario(t, e, ctx)
	}
}

func (e *env) httpURL() string { return "http://127.0.0.1:" + strconv.Itoa(e.relay.Port()) + "/" }

// path is a broadcast name unique to the scenario.
func (e *env) path(t *testing.T) string {
	return "interop/" + strings.NewReplacer("/", "-").Replace(t.Name())
}

// dialGo connects a Go client to the relay over raw QUIC.
func (e *env) dialGo(t *testing.T, ctx context.Context, cfg session.Config) *session.Session {
	t.Helper()
	cfg.Fingerprint = e.relay.Fingerprint()
	cfg.Logger = testLogger()
	sess, err := session.Dial(ctx, "moqt://127.0.0.1:"+strconv.Itoa(e.relay.Port()), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

// waitAnnounced waits until the relay knows the broadcast.
func (e *env) waitAnnounced(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	view, err := e.relay.Origin().Consume().ConsumeOnly(moq.NewPath(path))
	if err != nil {
		t.Fatal(err)
	}
	c := view.Announcements()
	defer c.Close()
	for {
		a, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("relay never saw %s: %v", path, err)
		}
		if a.Broadcast != nil {
			return
		}
	}
}

// js is a running interop script.
type js struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	done   chan error
	events eventQueue
}

// eventQueue holds the JSON events a peer reported, one queue per kind.
type eventQueue struct {
	mu     sync.Mutex
	queues map[string]chan map[string]any
}

// add queues ev under its "event" field.
func (q *eventQueue) add(ev map[string]any) {
	kind, _ := ev["event"].(string)
	q.queue(kind) <- ev
}

func (q *eventQueue) queue(kind string) chan map[string]any {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queues == nil {
		q.queues = make(map[string]chan map[string]any)
	}
	ch, ok := q.queues[kind]
	if !ok {
		ch = make(chan map[string]any, 256)
		q.queues[kind] = ch
	}
	return ch
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startJS runs script with the relay URL, the mode and args; it waits for the
// script's "ready" event and checks the negotiated version.
func (e *env) startJS(t *testing.T, ctx context.Context, script string, args ...string) *js {
	t.Helper()
	args = append([]string{script, "--url", e.httpURL(), "--mode", e.mode}, args...)
	cmd := exec.CommandContext(ctx, e.node, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &js{t: t, name: script, cmd: cmd, stdin: stdin, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			p.events.add(ev)
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, p.stderr)
		}
	})
	ready := p.expect(ctx, "ready")
	if got := ready["version"]; got != e.version {
		t.Fatalf("%s negotiated %v, want %s", script, got, e.version)
	}
	return p
}

// expect waits for the next event of a kind.
func (p *js) expect(ctx context.Context, kind string) map[string]any {
	p.t.Helper()
	select {
	case ev := <-p.events.queue(kind):
		return ev
	case err := <-p.done:
		p.done <- err
		// The reader may have queued the event just before the exit.
		select {
		case ev := <-p.events.queue(kind):
			return ev
		default:
		}
		p.t.Fatalf("%s exited (%v) before %q; stderr:\n%s", p.name, err, kind, p.stderr)
	case <-ctx.Done():
		p.t.Fatalf("%s: no %q event: %v; stderr:\n%s", p.name, kind, ctx.Err(), p.stderr)
	}
	return nil
}

func (p *js) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// wait waits for the script to exit successfully.
func (p *js) wait(ctx context.Context) {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Fatalf("%s: %v; stderr:\n%s", p.name, err, p.stderr)
		}
	case <-ctx.Done():
		p.t.Fatalf("%s did not exit: %v", p.name, ctx.Err())
	}
}

// checkJSResults reads one "result" per track from a subscribe.mjs run.
func checkJSResults(t *testing.T, ctx context.Context, sub *js) {
	t.Helper()
	for range interopTracks {
		res := sub.expect(ctx, "result")
		errs, _ := res["errors"].([]any)
		if len(errs) > 0 {
			t.Errorf("JS subscriber, track %v: %v", res["track"], errs)
		}
		if res["missingCount"] != float64(0) {
			t.Errorf("JS subscriber, track %v: %v groups missing, e.g. %v", res["track"], res["missingCount"], res["missing"])
		}
		first, _ := res["first"].(float64)
		if want := float64(interopGroups + 1 - int(first)); res["groups"] != want {
			t.Errorf("JS subscriber, track %v: %v groups from %v, want %v", res["track"], res["groups"], first, want)
		}
	}
}

// testJSPublish: JS publishes 3 tracks of 200 groups × 10 frames; a Go
// subscriber and a JS subscriber behind the relay check every byte.
func testJSPublish(t *testing.T, e *env, ctx context.Context) {
	path := e.path(t)
	tracks := strings.Join(interopTracks, ",")
	counts := []string{"--groups", strconv.Itoa(interopGroups), "--frames", strconv.Itoa(interopFrames)}
	pub := e.startJS(t, ctx, "publish.mjs", append([]string{"--broadcast", path, "--tracks", tracks}, counts...)...)
	e.waitAnnounced(t, ctx, path)

	// Group 0 is the rendezvous: a subscription starts at the newest group.
	sess := e.dialGo(t, ctx, session.Config{})
	goResults := make(chan goTrackResult, len(interopTracks))
	goFirst := make(chan struct{}, len(interopTracks))
	broadcast := sess.ConsumeBroadcast(moq.NewPath(path))
	for _, name := range interopTracks {
		track, err := broadcast.SubscribeTrack(moq.Track{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer track.Close()
			goResults <- readGoTrack(ctx, track, name, goFirst, interopGroups)
		}()
	}
	sub := e.startJS(t, ctx, "subscribe.mjs", append([]string{"--broadcast", path, "--tracks", tracks}, counts...)...)
	for range interopTracks {
		sub.expect(ctx, "first")
		select {
		case <-goFirst:
		case <-ctx.Done():
			t.Fatal("the Go subscriber got no first group")
		}
	}
	pub.send("go")
	for range interopTracks {
		pub.expect(ctx, "done")
	}
	checkJSResults(t, ctx, sub)
	for range interopTracks {
		res := <-goResults
		if res.err != nil {
			t.Errorf("Go subscriber, track %s: %v", res.name, res.err)
		}
	}
	sub.wait(ctx)
	pub.send("quit")
	pub.wait(ctx)
}

type goTrackResult struct {
	name string
	err  error
}

// readGoTrack reads a JS-published track to its end and verifies it.
func readGoTrack(ctx context.Context, track *moq.TrackConsumer, name string, first chan<- struct{}, groups uint64) goTrackResult {
	res := goTrackResult{name: name}
	seen := make(map[uint64]bool)
	start := uint64(0)
	for {
		group, err := track.NextGroup(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.err = fmt.Errorf("next group: %w", err)
			return res
		}
		seq := group.Sequence()
		f := 0
		for {
			frame, err := group.ReadFrame(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				res.err = fmt.Errorf("group %d: %w", seq, err)
				return res
			}
			if err := verifyPayload(frame, name, seq, f); err != nil {
				res.err = err
				return res
			}
			f++
		}
		if f != interopFrames {
			res.err = fmt.Errorf("group %d: %d frames, want %d", seq, f, interopFrames)
			return res
		}
		if len(seen) == 0 {
			start = seq
			first <- struct{}{}
		}
		seen[seq] = true
	}
	for g := start + 1; g <= groups; g++ {
		if !seen[g] {
			res.err = fmt.Errorf("group %d missing (%d of %d received)", g, len(seen), groups+1-start)
			return res
		}
	}
	return res
}

// payload and verifyPayload mirror lib.mjs: "track:group:frame:millis:" then
// filler bytes that follow from the counters.
func payload(track string, group uint64, frame int) []byte {
	b := fmt.Appendf(nil, "%s:%d:%d:%d:", track, group, frame, time.Now().UnixMilli())
	for i := range fillerLength(track, group, frame) {
		b = append(b, byte(int(group)+3*frame+i))
	}
	return b
}

func fillerLength(track string, group uint64, frame int) int {
	return (int(group)*31 + frame*17 + len(track)*7) % 512
}

func verifyPayload(data []byte, track string, group uint64, frame int) error {
	parts := bytes.SplitN(data, []byte(":"), 5)
	if len(parts) != 5 {
		return fmt.Errorf("t=%s g=%d f=%d: no header", track, group, frame)
	}
	if want := fmt.Sprintf("%s:%d:%d", track, group, frame); string(bytes.Join(parts[:3], []byte(":"))) != want {
		return fmt.Errorf("t=%s g=%d f=%d: header says %s", track, group, frame, bytes.Join(parts[:3], []byte(":")))
	}
	if ts, err := strconv.ParseInt(string(parts[3]), 10, 64); err != nil || ts <= 0 || ts > time.Now().UnixMilli() {
		return fmt.Errorf("t=%s g=%d f=%d: bad time %q", track, group, frame, parts[3])
	}
	filler := parts[4]
	if n := fillerLength(track, group, frame); len(filler) != n {
		return fmt.Errorf("t=%s g=%d f=%d: %d filler bytes, want %d", track, group, frame, len(filler), n)
	}
	for i, c := range filler {
		if c != byte(int(group)+3*frame+i) {
			return fmt.Errorf("t=%s g=%d f=%d: filler byte %d differs", track, group, frame, i)
		}
	}
	return nil
}

// testGoPublish: the Go library publishes 3 tracks; a JS subscriber checks
// every byte.
func testGoPublish(t *testing.T, e *env, ctx context.Context) {
	path := e.path(t)
	origin := moq.NewOrigin()
	broadcast, _ := origin.CreateBroadcast(moq.NewPath(path))
	defer broadcast.Close()
	var tracks []*moq.TrackProducer
	for _, name := range interopTracks {
		track, err := broadcast.CreateTrack(moq.Track{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		defer track.Close()
		writeGoGroup(t, track, name, 0)
		tracks = append(tracks, track)
	}
	pub := e.dialGo(t, ctx, session.Config{Publish: origin.Consume()})
	e.waitAnnounced(t, ctx, path)

	sub := e.startJS(t, ctx, "subscribe.mjs", "--broadcast", path, "--tracks", strings.Join(interopTracks, ","),
		"--groups", strconv.Itoa(interopGroups), "--frames", strconv.Itoa(interopFrames))
	for range interopTracks {
		sub.expect(ctx, "first")
	}
	for g := uint64(1); g <= interopGroups; g++ {
		for i, track := range tracks {
			writeGoGroup(t, track, interopTracks[i], g)
		}
	}
	for _, track := range tracks {
		if err := track.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	checkJSResults(t, ctx, sub)
	sub.wait(ctx)
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func writeGoGroup(t *testing.T, track *moq.TrackProducer, name string, g uint64) {
	t.Helper()
	group, err := track.CreateGroup(g)
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	for f := range interopFrames {
		if err := group.WriteFrame(payload(name, g, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := group.Finish(); err != nil {
		t.Fatal(err)
	}
}

// testCLIPublish: `moq pub` publishes lines; a JS subscriber checks each.
func testCLIPublish(t *testing.T, e *env, ctx context.Context) {
	path := e.path(t)
	cmd := exec.CommandContext(ctx, e.moq, "pub", "--url", e.httpURL(), "--broadcast", path, "--track", "t0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	line := func(g int) {
		if _, err := fmt.Fprintf(stdin, "t0:%d:0\n", g); err != nil {
			t.Fatal(err)
		}
	}
	line(0)
	e.waitAnnounced(t, ctx, path)
	sub := e.startJS(t, ctx, "subscribe.mjs", "--broadcast", path, "--tracks", "t0",
		"--groups", strconv.Itoa(interopGroups), "--frames", "1", "--format", "text")
	sub.expect(ctx, "first")
	for g := 1; g <= interopGroups; g++ {
		line(g)
	}
	_ = stdin.Close()
	res := sub.expect(ctx, "result")
	if errs, _ := res["errors"].([]any); len(errs) > 0 || res["missingCount"] != float64(0) {
		t.Errorf("JS subscriber: errors %v, missing %v", res["errors"], res["missing"])
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("moq pub: %v; stderr: %s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("moq pub did not exit at the end of its input")
	}
	sub.wait(ctx)
}

// testJSAnnounced: JS watches a prefix while Go publishers connect, publish
// and leave; it must see every broadcast become active and then end.
func testJSAnnounced(t *testing.T, e *env, ctx context.Context) {
	prefix := e.path(t)
	watch := e.startJS(t, ctx, "announced.mjs", "--prefix", prefix)
	expect := func(name string, active bool) {
		t.Helper()
		ev := watch.expect(ctx, "announce")
		if ev["path"] != prefix+"/"+name || ev["active"] != active {
			t.Fatalf("announcement %v, want %s/%s active=%v", ev, prefix, name, active)
		}
	}
	publisher := func(name string) *session.Session {
		origin := moq.NewOrigin()
		b, _ := origin.CreateBroadcast(moq.NewPath(prefix, name))
		t.Cleanup(b.Close)
		return e.dialGo(t, ctx, session.Config{Publish: origin.Consume()})
	}
	a := publisher("a")
	expect("a", true)
	b := publisher("b")
	expect("b", true)
	_ = a.Close()
	expect("a", false)
	c := publisher("c")
	expect("c", true)
	_ = b.Close()
	expect("b", false)
	_ = c.Close()
	expect("c", false)
	watch.send("quit")
	watch.wait(ctx)
}

// testJSMissing: subscribing to a broadcast that does not exist ends with an
// error, not a hang.
func testJSMissing(t *testing.T, e *env, ctx context.Context) {
	p := e.startJS(t, ctx, "missing.mjs", "--broadcast", e.path(t))
	res := p.expect(ctx, "result")
	if res["outcome"] != "error" {
		t.Fatalf("subscribing to a missing broadcast: %v, want an error", res)
	}
	p.wait(ctx)
}
