//go:build unix

package interop

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
	"github.com/moqgo/moq/session"
)

const browserGroups uint64 = 100

// TestBrowser runs @moq/lite in headless Chromium against the relay over
// real WebTransport: the page takes the http:// route (it fetches
// /certificate.sha256 and trusts that hash), comes from another origin than
// the relay, subscribes to a Go-published track and publishes one that a Go
// subscriber reads, every byte checked on both sides.
func TestBrowser(t *testing.T) {
	chromium := requireChromium(t)
	requireNode(t) // for the installed packages the page loads
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := &env{t: t, relay: relaytest.Start(t, relay.Config{})}

	// Go publishes browser/go; group 0 is the rendezvous.
	origin := moq.NewOrigin()
	broadcast, _ := origin.CreateBroadcast(moq.NewPath("browser/go"))
	defer broadcast.Close()
	goTrack, err := broadcast.CreateTrack(moq.Track{Name: "t0"})
	if err != nil {
		t.Fatal(err)
	}
	defer goTrack.Close()
	writeGoGroup(t, goTrack, "t0", 0)
	e.dialGo(t, ctx, session.Config{Publish: origin.Consume()})
	e.waitAnnounced(t, ctx, "browser/go")

	page := startPage(t, chromium, url.Values{
		"relay":   {e.httpURL()},
		"consume": {"browser/go"},
		"publish": {"browser/js"},
		"groups":  {strconv.FormatUint(browserGroups, 10)},
		"frames":  {strconv.Itoa(interopFrames)},
	})
	if ready := page.expect(ctx, "ready"); ready["version"] != "moq-lite-04" {
		t.Fatalf("the browser negotiated %v over WebTransport, want moq-lite-04", ready["version"])
	}

	// Go → browser.
	page.expect(ctx, "first")
	for g := uint64(1); g <= browserGroups; g++ {
		writeGoGroup(t, goTrack, "t0", g)
	}
	if err := goTrack.Finish(); err != nil {
		t.Fatal(err)
	}

	// Browser → Go.
	e.waitAnnounced(t, ctx, "browser/js")
	sub := e.dialGo(t, ctx, session.Config{})
	jsTrack, err := sub.ConsumeBroadcast(moq.NewPath("browser/js")).SubscribeTrack(moq.Track{Name: "t0"})
	if err != nil {
		t.Fatal(err)
	}
	defer jsTrack.Close()
	page.expect(ctx, "serving")
	first := make(chan struct{}, 1)
	result := make(chan goTrackResult, 1)
	go func() { result <- readGoTrack(ctx, jsTrack, "t0", first, browserGroups) }()
	select {
	case <-first:
	case res := <-result:
		t.Fatalf("the Go subscriber ended before the browser's first group: %v", res.err)
	}
	page.release("go")
	page.expect(ctx, "published")
	if res := <-result; res.err != nil {
		t.Errorf("Go subscriber of the browser's track: %v", res.err)
	}
	page.release("quit")

	res := page.expect(ctx, "result")
	if errs, _ := res["errors"].([]any); len(errs) > 0 {
		t.Errorf("browser subscriber: %v", errs)
	}
	if res["missingCount"] != float64(0) {
		t.Errorf("browser subscriber: %v groups missing, e.g. %v", res["missingCount"], res["missing"])
	}
	if res["first"] != float64(0) || res["groups"] != float64(browserGroups+1) {
		t.Errorf("browser subscriber: %v groups from %v, want %d from 0", res["groups"], res["first"], browserGroups+1)
	}
	page.expect(ctx, "closed")
}

// requireChromium finds Chromium ($CHROMIUM or chromium on the PATH). Without
// it the test is skipped, except under CI where that is a failure.
func requireChromium(t *testing.T) string {
	t.Helper()
	name := os.Getenv("CHROMIUM")
	if name == "" {
		name = "chromium"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is required under CI for the browser interop test (.ci/run installs the Debian package)")
		}
		t.Skip("chromium not found; the browser interop test needs it")
	}
	return path
}

// page is the interop page running in a headless Chromium.
type page struct {
	t      *testing.T
	events eventQueue
	log    lockedBuffer
	done   chan error // Chromium's exit

	mu       sync.Mutex
	released map[string]chan struct{}
}

// startPage serves tests/interop over HTTP on loopback and opens
// browser/index.html with query in a headless Chromium.
func startPage(t *testing.T, chromium string, query url.Values) *page {
	t.Helper()
	p := &page{t: t, done: make(chan error, 1), released: make(map[string]chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServer(http.Dir(".")))
	mux.HandleFunc("POST /event", func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.events.add(ev)
	})
	mux.HandleFunc("POST /log", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(&p.log, r.Body)
		_, _ = p.log.Write([]byte("\n"))
	})
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-p.gate(r.URL.Query().Get("for")):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		p.releaseAll()
		srv.Close()
	})

	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		srv.URL+"/browser/index.html?"+query.Encode())
	// Chromium starts helper processes: end them all with the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("page console:\n%s\nchromium output:\n%s", &p.log, &stderr)
		}
	})
	return p
}

// gate returns the channel that release closes for name.
func (p *page) gate(name string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gateLocked(name)
}

func (p *page) gateLocked(name string) chan struct{} {
	ch, ok := p.released[name]
	if !ok {
		ch = make(chan struct{})
		p.released[name] = ch
	}
	return ch
}

// release lets the page's /wait?for=name return.
func (p *page) release(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	closeGate(p.gateLocked(name))
}

// releaseAll lets every waiting /wait return.
func (p *page) releaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.released {
		closeGate(ch)
	}
}

func closeGate(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// expect waits for the next event of a kind; an "error" event from the page
// or Chromium's exit fails the test.
func (p *page) expect(ctx context.Context, kind string) map[string]any {
	p.t.Helper()
	select {
	case ev := <-p.events.queue(kind):
		return ev
	case ev := <-p.events.queue("error"):
		p.t.Fatalf("the page failed before %q: %v", kind, ev["message"])
	case err := <-p.done:
		p.done <- err
		p.t.Fatalf("chromium exited (%v) before %q", err, kind)
	case <-ctx.Done():
		p.t.Fatalf("the page sent no %q event: %v", kind, ctx.Err())
	}
	return nil
}
