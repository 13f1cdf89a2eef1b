package relay

import (
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// Limits bound what one peer can make the relay hold. Zero fields take the
// defaults below and those of session.Limits; a negative count removes that
// bound.
type Limits struct {
	// Limits bound each session: the request timeout, and how many
	// subscriptions, pending subscriptions, fetches, announce interests and
	// announced broadcasts a peer may have at once.
	session.Limits
	// MaxStreams is how many streams of each direction a QUIC or
	// WebTransport peer may have open at once. Default 1024.
	MaxStreams int
	// MaxSessions bounds the sessions the relay runs at once, and
	// MaxSessionsPerIP those from one IP address. Defaults 10000 and 1000.
	MaxSessions, MaxSessionsPerIP int
	// HandshakeTimeout bounds an HTTP request's headers and a session's
	// handshake (the SETUP exchange of lite-01/02). Default 10 s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a session that received nothing for this long
	// (keep-alives count), on every transport. Default 30 s.
	IdleTimeout time.Duration
}

// Default relay limits; see Limits.
const (
	DefaultMaxStreams       = 1024
	DefaultMaxSessions      = 10000
	DefaultMaxSessionsPerIP = 1000
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
)

func (l Limits) withDefaults() Limits {
	l.Limits = l.Limits.WithDefaults()
	count := func(v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 1 << 60
		}
	}
	count(&l.MaxStreams, DefaultMaxStreams)
	count(&l.MaxSessions, DefaultMaxSessions)
	count(&l.MaxSessionsPerIP, DefaultMaxSessionsPerIP)
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// CacheLimits bound the relay's caches of the tracks it relays: each track
// keeps its groups MaxAge and at most TrackBytes of payload, and all tracks
// together at most TotalBytes (a track that grows the total past it evicts
// its own oldest groups); every track keeps its newest group regardless.
// Zero fields take the defaults.
type CacheLimits struct {
	// MaxAge defaults to moq.DefaultCacheAge (30 s).
	MaxAge time.Duration
	// TrackBytes defaults to moq.DefaultCacheBytes (64 MiB).
	TrackBytes uint64
	// TotalBytes defaults to DefaultCacheTotal.
	TotalBytes uint64
}

// DefaultCacheTotal is the default bound on the payload all the relay's
// tracks cache together.
const DefaultCacheTotal = 1 << 30

// policy returns the cache policy of the relay's tracks, with its shared
// budget.
func (c CacheLimits) policy() moq.CachePolicy {
	total := c.TotalBytes
	if total == 0 {
		total = DefaultCacheTotal
	}
	return moq.CachePolicy{MaxAge: c.MaxAge, MaxBytes: c.TrackBytes, Budget: moq.NewCacheBudget(total)}
}
