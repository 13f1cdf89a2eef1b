package engine

import "time"

// Limits bound what a peer can make one session hold or do. Zero fields
// take the defaults; a negative count removes that bound.
type Limits struct {
	// RequestTimeout bounds how long a stream the peer opens may take to
	// send its first message (a control stream's type and request, a group
	// stream's header), and how long a subscription of the peer may wait
	// for its track to be confirmed upstream. Default 10 s.
	RequestTimeout time.Duration
	// MaxSubscriptions bounds the peer's subscriptions served at once.
	// Default 4096.
	MaxSubscriptions int
	// MaxPendingSubscriptions bounds the peer's subscriptions waiting for
	// their track to be confirmed at once; it is also the burst of the
	// unconfirmed-track budget below, and the bound on the unconfirmed
	// subscriptions the session makes for one mirrored broadcast. Default
	// 64.
	MaxPendingSubscriptions int
	// UnconfirmedRate is how many subscriptions per second, beyond the
	// burst of MaxPendingSubscriptions, the peer may make to tracks not
	// confirmed yet: each one may cost a subscription upstream, so a peer
	// asking for made-up names is refused (moq.ErrBoundsExceeded) rather
	// than amplified. Default 16.
	UnconfirmedRate int
	// MaxGroupStreams bounds the group streams the session writes to the
	// peer at once, over all its subscriptions (each subscription writes at
	// most 64): what a peer that stops reading can make it hold. Default
	// 1024.
	MaxGroupStreams int
	// MaxFetches bounds the peer's fetches served at once. Default 64.
	MaxFetches int
	// MaxAnnounceInterests bounds the announce streams the peer may have
	// open at once. Default 16.
	MaxAnnounceInterests int
	// MaxAnnounced bounds the broadcasts the peer may have announced at
	// once on one announce stream; past it the stream is reset. Default
	// 10000.
	MaxAnnounced int
}

// Default limits; see Limits.
const (
	DefaultRequestTimeout          = 10 * time.Second
	DefaultMaxSubscriptions        = 4096
	DefaultMaxPendingSubscriptions = 64
	DefaultUnconfirmedRate         = 16
	DefaultMaxGroupStreams         = 1024
	DefaultMaxFetches              = 64
	DefaultMaxAnnounceInterests    = 16
	DefaultMaxAnnounced            = 10000
)

// WithDefaults returns l with its zero fields set to the defaults and its
// negative counts to no bound.
func (l Limits) WithDefaults() Limits {
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	count := func(v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = int(^uint(0) >> 1)
		}
	}
	count(&l.MaxSubscriptions, DefaultMaxSubscriptions)
	count(&l.MaxPendingSubscriptions, DefaultMaxPendingSubscriptions)
	count(&l.UnconfirmedRate, DefaultUnconfirmedRate)
	count(&l.MaxGroupStreams, DefaultMaxGroupStreams)
	count(&l.MaxFetches, DefaultMaxFetches)
	count(&l.MaxAnnounceInterests, DefaultMaxAnnounceInterests)
	count(&l.MaxAnnounced, DefaultMaxAnnounced)
	return l
}
