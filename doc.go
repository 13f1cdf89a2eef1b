// Package moq is the data model of Media over QUIC: what publishers,
// subscribers and relays exchange, independent of the protocol that carries
// it. Sessions live in package session, which speaks the wire protocols
// (moq-lite, and later the IETF moq-transport drafts) over QUIC,
// WebTransport and WebSocket; this package has no network dependency.
//
// # Data model
//
// An origin maps paths to broadcasts; a broadcast holds named tracks; a track
// is a sequence of groups, delivered independently and possibly out of
// order; a group is an ordered sequence of frames; a frame is a sized
// payload, possibly written in chunks, with an optional timestamp. Each level
// has a producer side that writes and a consumer side that reads:
//
//	origin    OriginProducer     OriginConsumer     (a view; Announcements queues)
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
// Producer handles, TrackConsumer handles and Announcements are released with
// Close; Clone returns another handle to the same state. When the last
// producer handle of a frame, group, track or broadcast is released before
// Finish or Abort, the state ends with ErrDropped, so a consumer never waits
// forever for a producer that went away. A runtime cleanup releases a handle
// that becomes unreachable while open, but only when the garbage collector
// gets to it: always Close handles. TrackProducer.Used and Unused follow the
// number of open TrackConsumer handles. OriginProducer, OriginConsumer and
// the group, frame and broadcast consumers are plain views and need no
// Close.
//
// # Sequences and errors
//
// Calls that return the next item of a sequence (TrackConsumer.NextGroup,
// GroupConsumer.NextFrame and ReadFrame, FrameConsumer.ReadChunk,
// Announcements.Next) return io.EOF at its clean end, and Groups, Frames and
// All iterate over the same sequences. A call that looks one item up fails
// with ErrNotFound when it does not exist, and a scope operation outside what
// the scope allows fails with ErrUnauthorized. Errors are the sentinels of
// errors.go, compared with errors.Is; they carry no wire code: each protocol
// engine maps them to and from its own codes, so the error a peer sends
// matches the sentinel of the same meaning. AppError carries an
// application's own codes.
//
// # Blocking and sharing
//
// Every call that waits takes a context and returns its error when it ends
// first; the model itself starts no goroutines (handlers such as
// RequestHandler run on the caller's goroutine). Payloads are shared, not
// copied: bytes handed to a producer are retained and returned to every
// consumer, so neither side may modify them afterwards.
//
// # Mapping the protocols onto the model
//
// moq-lite maps one to one: a group is a stream of frames. The IETF
// moq-transport drafts map as follows. A namespace tuple is a Path whose
// segments are the tuple's elements; an element that is empty or contains
// "/" cannot be a path segment, so such a namespace is refused (the request
// fails, the announcement is ignored) rather than silently merged with
// another path. A group's objects in subgroup 0 are its frames, object id i
// being frame i: received objects must be dense from 0 (a group whose object
// ids skip is refused on its stream, since a hole cannot be represented), and
// sent objects are numbered from 0. The end-of-group status and the stream's
// FIN both finish the group; end-of-track finishes the track at that group.
// Object timestamps (a LOC or moq-transport timestamp property) become
// FrameInfo.Timestamp in the track's Timescale.
package moq
