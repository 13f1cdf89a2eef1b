// Package session runs Media over QUIC sessions: it connects (Dial, Connect)
// or accepts (Server, Accept) a transport connection, negotiates the protocol
// version and hands the connection to the engine of that version, which
// carries the broadcasts of package moq in both directions.
//
// A session publishes the broadcasts of Config.Publish, an origin view the
// peer may look into, and mirrors the broadcasts the peer announces into
// Config.Consume. Session.ConsumeBroadcast reaches a broadcast of the peer
// directly, Session.Subscribe subscribes with explicit delivery options, and
// Session.Fetch asks for one past group. A Client is a session that follows
// the server's GOAWAY and, with Reconnect, replaces a lost connection.
//
// # Versions and transports
//
// moq-lite-03 and -04 are chosen by the connection's protocol: the QUIC ALPN,
// the WebTransport protocol or the WebSocket subprotocol; lite-01 and -02 by
// a SETUP exchange on connections whose protocol is "moql" or none. Dial
// takes https:// (WebTransport), http:// (WebTransport trusting the
// certificate hash the server publishes, for local relays), moqt:// (raw
// QUIC) and ws:// or wss:// (WebSocket with QMux) URLs; Server serves raw
// QUIC and WebTransport on one UDP socket.
//
// # Errors and lifetimes
//
// Errors are the sentinels of package moq, whatever the wire code that
// carried them. Every call that blocks takes a context. Close a Session, a
// Client, a Subscription and a RemoteBroadcast when done; Shutdown lets a
// session deliver the tracks it finished before it closes.
package session
