package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/serve"
)

// Handover limits of a Client following a GOAWAY.
const (
	// goAwayDialTimeout bounds connecting to the URL a GOAWAY names.
	goAwayDialTimeout = 10 * time.Second
	// goAwayDrain bounds how long the old session may finish the groups it
	// still owes after the subscriptions moved.
	goAwayDrain = 5 * time.Second
)

// Client is a session that follows GOAWAY: when the server asks it to move
// (moq-lite-04), it connects to the new URL with the same Config, moves the
// subscriptions of the broadcasts it got from ConsumeBroadcast there, and
// then leaves the old session. TrackConsumers obtained before the move keep
// receiving groups: from lite-03 on the handover is seamless, the old
// subscription ending after the newest group it delivered (an update with an
// end group) and the new one starting right after it.
//
// Config.Publish is served on every session in turn, and Config.Consume gets
// the broadcasts each session announces; broadcasts announced by a session
// end with it, unlike those of ConsumeBroadcast. A session that ends without
// a GOAWAY ends the Client, unless the Client was dialed with Reconnect: then
// it dials its URL again and its ConsumeBroadcast tracks go on from the group
// after the newest they received (from lite-03 on; older versions restart at
// the publisher's newest group). Older groups still in flight when the
// session was lost are not asked for again.
type Client struct {
	cfg       Config
	reconnect *Backoff
	log       *slog.Logger

	// Reconnection state, used by run only.
	reconnected *Session      // the last session reconnection made
	connectedAt time.Time     // when it was made
	failures    int           // failed attempts in a row
	wait        time.Duration // before the next attempt

	ctx    context.Context
	cancel context.CancelCauseFunc
	g      engine.Goroutines

	mu    sync.Mutex
	sess  *Session
	url   string
	moved chan struct{} // closed and replaced when the session changes
	err   error
	// remotes are the broadcasts of ConsumeBroadcast; nil once the Client
	// ended.
	remotes map[*engine.Remote]struct{}
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// Backoff paces reconnection attempts: the first comes after Min, and each
// further one waits twice as long, up to Max. An attempt fails when the dial
// fails or the new session ends within Max; a session that lasted longer
// starts the pacing over. After Attempts failures in a row the Client gives
// up and ends with the last error (0: it never gives up).
type Backoff struct {
	Min, Max time.Duration
	Attempts int
}

// DefaultBackoff waits 250 ms to 10 s between attempts and never gives up.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// Reconnect makes the Client dial its URL again whenever its session ends
// without a GOAWAY, pacing the attempts with b (zero fields take
// DefaultBackoff's).
func Reconnect(b Backoff) ClientOption {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max < b.Min {
		b.Max = max(b.Min, DefaultBackoff.Max)
	}
	return func(c *Client) { c.reconnect = &b }
}

// DialClient connects to rawURL like Dial and returns a Client that follows
// the server's GOAWAY. ctx bounds the first connection only.
func DialClient(ctx context.Context, rawURL string, cfg *Config, opts ...ClientOption) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	sess, err := Dial(ctx, rawURL, cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancelCause(context.Background())
	c := &Client{cfg: *cfg, log: cfg.logger(), ctx: cctx, cancel: cancel, sess: sess, url: rawURL,
		moved: make(chan struct{}), remotes: make(map[*engine.Remote]struct{})}
	for _, opt := range opts {
		opt(c)
	}
	c.spawn(c.run)
	return c, nil
}

// spawn runs f on a goroutine that Close waits for; it reports false once
// the Client is closing.
func (c *Client) spawn(f func()) bool { return c.g.Spawn(f) }

// current returns the session in use and a channel closed when it changes.
func (c *Client) current() (*Session, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess, c.moved
}

// Session returns the session in use.
func (c *Client) Session() *Session {
	s, _ := c.current()
	return s
}

// URL returns the URL of the session in use.
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url
}

// Moved returns a channel closed when the Client next moves to another
// session.
func (c *Client) Moved() <-chan struct{} {
	_, moved := c.current()
	return moved
}

// Done is closed when the Client has ended.
func (c *Client) Done() <-chan struct{} { return c.ctx.Done() }

// Err returns why the Client ended: nil while it runs and after Close.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the Client and its session. Its goroutines end first, so that
// a session a reconnection was just making is the one closed.
func (c *Client) Close() error {
	c.end(nil)
	c.g.Stop()
	return c.Session().Close()
}

// end stops the Client once, recording err, and ends the broadcasts of
// ConsumeBroadcast with it.
func (c *Client) end(err error) {
	c.mu.Lock()
	if c.ctx.Err() == nil {
		c.err = err
	}
	remotes := c.remotes
	c.remotes = nil
	c.mu.Unlock()
	if err == nil {
		err = moq.ErrClosed
	}
	c.cancel(err)
	for r := range remotes {
		r.End(context.Cause(c.ctx))
	}
}

// run follows the GOAWAYs of the session in use, and replaces a lost
// session when the Client reconnects.
func (c *Client) run() {
	for {
		sess, _ := c.current()
		select {
		case <-c.ctx.Done():
			return
		case <-sess.Done():
			if c.ctx.Err() != nil {
				return
			}
			if c.reconnect == nil {
				c.end(sess.Err())
				return
			}
			c.log.Warn("session lost; reconnecting", "err", sess.Err())
			next, err := c.redialLost(sess)
			_ = sess.Close()
			if err != nil {
				c.end(err)
				return
			}
			c.replace(next, c.URL())
			c.log.Info("reconnected")
			continue
		case <-sess.GoAwayReceived():
		}
		next, target, err := c.redial(sess)
		if err != nil {
			c.log.Warn("cannot follow goaway", "err", err)
			_ = sess.Close()
			c.end(err)
			return
		}
		c.replace(next, target)
		c.log.Info("moved to a new session", "url", target)
		if !c.spawn(func() { c.retire(sess) }) {
			_ = sess.Close()
		}
	}
}

// replace makes next, connected to target, the session in use.
func (c *Client) replace(next *Session, target string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess, c.url = next, target
	close(c.moved)
	c.moved = make(chan struct{})
}

// redialLost replaces lost, a session that ended without GOAWAY: it dials
// the Client's URL until that works, the Client ends, or the backoff gives
// up. A reconnected session that ends before Backoff.Max has passed counts
// as a failed attempt, so a server that accepts and drops sessions at once
// is not dialed in a tight loop.
func (c *Client) redialLost(lost *Session) (*Session, error) {
	b := c.reconnect
	if c.reconnected != lost || time.Since(c.connectedAt) >= b.Max {
		c.failures, c.wait = 0, b.Min
	} else {
		c.failures++
		if err := c.giveUp(lost.Err()); err != nil {
			return nil, err
		}
	}
	for {
		timer := time.NewTimer(c.wait)
		select {
		case <-c.ctx.Done():
			timer.Stop()
			return nil, context.Cause(c.ctx)
		case <-timer.C:
		}
		c.wait = min(2*c.wait, b.Max)
		ctx, cancel := context.WithTimeout(c.ctx, goAwayDialTimeout)
		next, err := Dial(ctx, c.URL(), &c.cfg)
		cancel()
		if err == nil {
			c.reconnected, c.connectedAt = next, time.Now()
			return next, nil
		}
		if c.ctx.Err() != nil {
			return nil, context.Cause(c.ctx)
		}
		c.failures++
		if err := c.giveUp(err); err != nil {
			return nil, err
		}
		c.log.Info("reconnect failed", "attempts", c.failures, "err", err)
	}
}

// giveUp returns the error that ends the Client once its reconnection
// attempts are used up, nil before.
func (c *Client) giveUp(last error) error {
	if n := c.reconnect.Attempts; n > 0 && c.failures >= n {
		if last == nil {
			last = moq.ErrClosed
		}
		return fmt.Errorf("moq: reconnecting to %s: gave up after %d attempts: %w", c.URL(), c.failures, last)
	}
	return nil
}

// redial connects to the URL the GOAWAY of sess names.
func (c *Client) redial(sess *Session) (*Session, string, error) {
	c.mu.Lock()
	base := c.url
	c.mu.Unlock()
	target, err := resolveGoAway(base, sess.GoAwayURI())
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(c.ctx, goAwayDialTimeout)
	defer cancel()
	next, err := Dial(ctx, target, &c.cfg)
	if err != nil {
		return nil, "", fmt.Errorf("moq: following goaway to %s: %w", target, err)
	}
	return next, target, nil
}

// resolveGoAway returns where a GOAWAY uri sends a client connected to
// base: base itself for "", uri resolved against base otherwise.
func resolveGoAway(base, uri string) (string, error) {
	if uri == "" {
		return base, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%w: goaway to %q: %v", moq.ErrProtocolViolation, uri, err)
	}
	target := b.ResolveReference(u).String()
	// Refuse what no client can connect to: net/url resolves some
	// references ("//::") to URLs it cannot parse back, and a URI of its
	// own scheme may name no host ("https:").
	t, err := url.Parse(target)
	if err != nil || t.Host == "" {
		return "", fmt.Errorf("%w: goaway to %q: %q is not a URL to connect to", moq.ErrProtocolViolation, uri, target)
	}
	// A server may not move its clients to a connection that checks less.
	if verified(b.Scheme) && !verified(t.Scheme) {
		return "", fmt.Errorf("%w: goaway from %s to %q drops certificate verification", moq.ErrProtocolViolation, b.Scheme, target)
	}
	return target, nil
}

// verified reports whether Dial verifies the server's certificate for URLs
// of scheme: not for ws:// (no TLS) and http:// (a certificate hash fetched
// in the clear).
func verified(scheme string) bool {
	switch scheme {
	case "https", "wss", "moqt", "moql":
		return true
	}
	return false
}

// retire closes a session left for another once the subscriptions that
// still finish there are done, or after goAwayDrain.
func (c *Client) retire(old *Session) {
	ctx, cancel := context.WithTimeout(c.ctx, goAwayDrain)
	defer cancel()
	old.e.WaitSubscriptions(ctx)
	_ = old.Close()
}

// ConsumeBroadcast returns the server's broadcast at path, announced or
// not, like Session.ConsumeBroadcast, but its tracks follow the Client from
// session to session. It ends when the Client ends; Close it when done.
func (c *Client) ConsumeBroadcast(path moq.Path) *RemoteBroadcast {
	r := engine.NewRemote(nil, c.cfg.Cache, func(track *moq.TrackProducer) {
		if !c.spawn(func() { c.follow(path, track) }) {
			_ = track.Abort(moq.ErrClosed)
			track.Close()
		}
	}, func(ctx context.Context, track string, sequence uint64, priority uint8) (*moq.GroupConsumer, error) {
		return c.Session().Fetch(ctx, path, track, sequence, priority)
	})
	c.mu.Lock()
	if c.remotes == nil {
		c.mu.Unlock()
		r.End(context.Cause(c.ctx))
		return &RemoteBroadcast{BroadcastConsumer: r.Consumer(), release: func() {}}
	}
	c.remotes[r] = struct{}{}
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		_, ok := c.remotes[r]
		delete(c.remotes, r)
		c.mu.Unlock()
		if ok {
			r.End(moq.ErrClosed)
		}
	}
	return &RemoteBroadcast{BroadcastConsumer: r.Consumer(), release: release}
}

// follow feeds a requested track from the session in use, moving its
// subscription along with the Client, until the publisher finishes the
// track, it fails, nobody consumes it, or the Client ends.
func (c *Client) follow(path moq.Path, track *moq.TrackProducer) {
	defer track.Close()
	ctx, cancel := context.WithCancelCause(c.ctx)
	defer cancel(nil)
	if !c.spawn(func() {
		switch err := track.Unused(ctx); {
		case err == nil:
			cancel(moq.ErrCancel)
		case ctx.Err() == nil:
			cancel(err)
		}
	}) {
		_ = track.Abort(moq.ErrClosed)
		return
	}
	opts := SubscribeOptions{Priority: track.Info().Priority}
	sess, moved := c.current()
	sub, result, err := sess.e.Feed(ctx, path, track, opts)
	for {
		if err != nil {
			if ctx.Err() == nil && (leaving(sess) || c.lost(sess, err)) {
				// The session is being left or replaced: go on with the
				// next one.
				select {
				case <-moved:
				case <-ctx.Done():
				}
			}
			select {
			case <-moved:
				sess, moved = c.current()
				sub, result, err = sess.e.Feed(ctx, path, track, resume(track, opts, sess))
				continue
			default:
			}
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			_ = track.Abort(err)
			return
		}
		select {
		case err = <-result:
			if errors.Is(err, engine.ErrPeerClosed) && c.reconnect == nil && !leaving(sess) {
				err = nil // the server closed the session cleanly
			}
			if err == nil {
				_ = track.Finish()
				return
			}
		case <-ctx.Done():
			_ = track.Abort(context.Cause(ctx))
			sub.Close()
			return
		case <-moved:
			from := sess
			sess, moved = c.current()
			sub, result, err = c.handover(ctx, from, sub, sess, path, track, opts)
		}
	}
}

// lostGrace bounds how long a failed subscription waits for its session to
// end before the failure counts as the track's own.
const lostGrace = 2 * time.Second

// lost reports whether a subscription on sess failed with err because the
// session ended, which a reconnecting Client replaces. A stream reset by the
// peer is the track's own failure; other errors come from the session, which
// then ends shortly.
func (c *Client) lost(sess *Session, err error) bool {
	if c.reconnect == nil {
		return false
	}
	select {
	case <-sess.Done():
		return true
	default:
	}
	if engine.IsStreamReset(err) {
		return false
	}
	timer := time.NewTimer(lostGrace)
	defer timer.Stop()
	select {
	case <-sess.Done():
		return true
	case <-timer.C:
		return false
	case <-c.ctx.Done():
		return false
	}
}

// resumeWindow bounds how far below its newest group a track that moves to
// another session looks for groups it lacks. The groups a lost session had in
// flight are among the newest: a publisher writes at most
// serve.MaxGroupsInFlight of them at once.
const resumeWindow = serve.MaxGroupsInFlight

// resume returns the options that continue track on sess where it stopped,
// when sess can name a start group: at the oldest of its newest groups that
// never arrived (in flight when the session was lost, overtaken by a newer
// one), or else after its newest group. Groups that arrive twice are
// refused as duplicates by the track.
func resume(track *moq.TrackProducer, opts SubscribeOptions, sess *Session) SubscribeOptions {
	latest, ok := track.Latest()
	if !ok || !sess.e.CanStartAt() {
		return opts
	}
	// Gaps count only after the first group the track holds in the window.
	start := latest + 1
	if held := track.CachedGroups(latest-min(latest, resumeWindow-1), latest+1); len(held) > 0 {
		start = held[0].Sequence()
		for _, g := range held {
			if g.Sequence() != start {
				break
			}
			start++
		}
	}
	opts.Start = &start
	return opts
}

// leaving reports whether the Client is leaving sess: the server sent
// GOAWAY.
func leaving(sess *Session) bool {
	select {
	case <-sess.GoAwayReceived():
		return true
	default:
		return false
	}
}

// handover moves the subscription of track from one session to the next:
// it starts it on next and ends the old one after the newest group received
// so far when both sessions can name groups, at once otherwise.
func (c *Client) handover(ctx context.Context, from *Session, old *Subscription, next *Session, path moq.Path, track *moq.TrackProducer, opts SubscribeOptions) (*Subscription, <-chan error, error) {
	latest, ok := track.Latest()
	seamless := ok && from.e.CanStartAt() && next.e.CanStartAt()
	nextOpts := opts
	if seamless {
		nextOpts = resume(track, opts, next)
	}
	sub, result, err := next.e.Feed(ctx, path, track, nextOpts)
	if err != nil || !seamless {
		old.Close()
		return sub, result, err
	}
	end := latest
	oldOpts := opts
	oldOpts.End = &end
	if err := old.Update(ctx, oldOpts); err != nil && !errors.Is(err, moq.ErrClosed) {
		c.log.Debug("ending the old subscription", "err", err)
		old.Close()
	}
	return sub, result, nil
}
