// Package moq implements Media over QUIC moq-lite: the data model shared by
// publishers, subscribers and relays, and the sessions that carry it.
//
// # Data model
//
// An origin maps paths to broadcasts; a broadcast holds named tracks; a track
// is a sequence of groups, delivered independently and possibly out of
// order; a group is an ordered sequence of frames; a frame is a sized
// payload, possibly written in chunks. Each level has a producer side that
// writes and a consumer side that reads:
//
//	origin    OriginProducer     OriginConsumer     (announcements)
//	broadcast BroadcastProducer  BroadcastConsumer  (+ BroadcastDynamic for on-demand tracks)
//	track     TrackProducer      TrackConsumer
//	group     GroupProducer      GroupConsumer
//	frame     FrameProducer      FrameConsumer
//
// Consumers see the data written before they were created: a track caches
// its recent groups (DefaultCacheAge, always keeping the newest), and a
// group caches its frames up to MaxGroupBytes and MaxGroupFrames.
//
// # Lifetimes
//
// Producer handles, and TrackConsumer handles, are reference counted: Clone
// returns another handle to the same state and Close releases one. When the
// last producer handle of a frame, group, track or broadcast is released
// before Finish or Abort, the state ends with ErrDropped, so a consumer never
// waits forever for a producer that went away. A runtime cleanup releases a
// handle that becomes unreachable while open, but only when the garbage
// collector gets to it: always Close handles. TrackProducer.Used and Unused
// follow the number of open TrackConsumer handles. Group, frame and broadcast
// consumers are plain views and need no Close; OriginConsumer has a Close to
// stop its announcement queue.
//
// # Blocking and sharing
//
// Every call that waits takes a context and returns its error when it ends
// first; the model itself starts no goroutines. Payloads are shared, not
// copied: bytes handed to a producer are retained and returned to every
// consumer, so neither side may modify them afterwards.
//
// Errors are *Error values carrying their moq-lite wire code; compare them
// with errors.Is against the sentinels such as ErrDropped or ErrNotFound.
package moq
