package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/moqgo/moq/session"
)

// ClusterConfig joins relays into a cluster. Relays exchange their
// broadcasts over ordinary moq-lite-04 sessions that both publish and
// consume, and loops are avoided with announcement hops: every relay appends
// its node id to the hops of the broadcasts it announces, ignores the
// announcements that already carry its id, and asks each peer not to
// announce back what came through it (exclude_hop). A broadcast reachable
// over several paths is served over the one with the fewest hops. Any
// topology works, lines and rings included.
type ClusterConfig struct {
	// NodeID identifies the relay in hop lists; every relay of a cluster
	// needs its own. 0 picks a random one (below 2^53, which the JavaScript
	// peers can represent).
	NodeID uint64
	// Peers are the URLs of the relays to connect to, in any form session.Dial
	// accepts (http:// trusts the certificate hash the peer serves, for
	// self-signed peers). Connecting one way is enough: a connection carries
	// broadcasts both ways. A lost connection is retried with backoff.
	Peers []string
	// DialOptions apply to the connections to peers.
	DialOptions session.DialOptions
}

// Peer reconnection backoff.
const (
	peerDialTimeout = 10 * time.Second
	peerMinBackoff  = 100 * time.Millisecond
	peerMaxBackoff  = 10 * time.Second
)

// withNodeID returns the configuration with a node id, random if unset.
func (c ClusterConfig) withNodeID() ClusterConfig {
	for c.NodeID == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.NodeID = binary.BigEndian.Uint64(b[:]) & (1<<53 - 1)
	}
	return c
}

// NodeID is the relay's id in announcement hop lists.
func (r *Relay) NodeID() uint64 { return r.cluster.NodeID }

// runPeers keeps a session to every configured peer until ctx is done.
func (r *Relay) runPeers(ctx context.Context) {
	for _, peer := range r.cluster.Peers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.runPeer(ctx, peer)
		}()
	}
}

// runPeer connects to one peer and reconnects whenever the session ends.
func (r *Relay) runPeer(ctx context.Context, url string) {
	log := r.log.With("peer", url)
	backoff := peerMinBackoff
	for {
		connected, err := r.peerSession(ctx, url, log)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = peerMinBackoff
		}
		log.Info("peer connection ended; retrying", "err", err, "after", backoff)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, peerMaxBackoff)
	}
}

// peerSession runs one session with a peer: every broadcast of the relay is
// offered, and every broadcast of the peer is taken in.
func (r *Relay) peerSession(ctx context.Context, url string, log *slog.Logger) (connected bool, err error) {
	dialCtx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	cfg := r.sessionConfig(r.origin, log)
	cfg.Versions = []session.Version{session.Lite04}
	cfg.DialOptions = r.cluster.DialOptions
	sess, err := session.Dial(dialCtx, url, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	log.Info("peer connected", "version", sess.Version().String())
	select {
	case <-sess.Done():
	case <-ctx.Done():
	}
	_ = sess.Close()
	return true, sess.Err()
}
