package engine

import "sync/atomic"

// Stats counts what sessions do, for metrics. Sessions that share one add
// up; it is safe for concurrent use.
type Stats struct {
	// Subscriptions is the number of the peers' subscriptions being served.
	Subscriptions atomic.Int64
	// GroupsOut and BytesOut count the groups written to peers, completely,
	// and their payload bytes; GroupsIn and BytesIn the groups and payload
	// received.
	GroupsOut, BytesOut, GroupsIn, BytesIn atomic.Uint64
	// GroupsDropped counts the groups reported to subscribers as dropped
	// (too late for their max latency, or unavailable).
	GroupsDropped atomic.Uint64
}
