package lite

import (
	"fmt"
	"time"

	"github.com/moqgo/moq/internal/wire"
)

// Fetch opens a fetch stream, asking for one whole group of a track.
// lite-03 and later.
type Fetch struct {
	// Broadcast is the broadcast path.
	Broadcast string
	// Track is the track name (never normalised).
	Track string
	// Priority is the subscriber's priority for the fetch.
	Priority uint8
	// Group is the sequence of the wanted group.
	Group uint64
}

// AppendBody implements Message.
func (m *Fetch) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() || v < Lite03 {
		return b, versionErr("FETCH", v)
	}
	e := encoder{b: b, msg: "FETCH"}
	e.str(m.Broadcast, "broadcast")
	e.str(m.Track, "track")
	e.u8(m.Priority)
	e.varint(m.Group, "group")
	return e.result(b)
}

// DecodeBody implements Message.
func (m *Fetch) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() || v < Lite03 {
		return versionErr("FETCH", v)
	}
	d := newDecoder(body, "FETCH")
	*m = Fetch{
		Broadcast: d.path("broadcast"),
		Track:     d.str("track"),
		Priority:  d.u8("priority"),
		Group:     d.varint("group"),
	}
	return d.finish()
}

// Probe reports the publisher's bandwidth estimate on a probe stream.
// lite-03 and later.
type Probe struct {
	// Bitrate is in bits per second; 0 means unknown.
	Bitrate uint64
	// RTT is the measured round-trip time, carried by lite-04 only, in whole
	// milliseconds; 0 means unknown. A known RTT under one millisecond is sent
	// as 1 ms because 0 on the wire means unknown.
	RTT time.Duration
}

// AppendBody implements Message.
func (m *Probe) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() || v < Lite03 {
		return b, versionErr("PROBE", v)
	}
	e := encoder{b: b, msg: "PROBE"}
	e.varint(m.Bitrate, "bitrate")
	if v >= Lite04 {
		switch {
		case m.RTT < 0:
			e.fail("rtt", fmt.Errorf("negative duration %v: %w", m.RTT, wire.ErrInvalid))
		case m.RTT == 0:
			e.varint(0, "rtt")
		default:
			e.duration(max(m.RTT, time.Millisecond), "rtt")
		}
	}
	return e.result(b)
}

// DecodeBody implements Message.
func (m *Probe) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() || v < Lite03 {
		return versionErr("PROBE", v)
	}
	d := newDecoder(body, "PROBE")
	*m = Probe{Bitrate: d.varint("bitrate")}
	if v >= Lite04 {
		m.RTT = d.duration("rtt")
	}
	return d.finish()
}

// Goaway asks the peer to move to another session. lite-04 and later.
type Goaway struct {
	// URI is where to reconnect; "" means the same URI. Never normalised.
	URI string
}

// AppendBody implements Message.
func (m *Goaway) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() || v < Lite04 {
		return b, versionErr("GOAWAY", v)
	}
	e := encoder{b: b, msg: "GOAWAY"}
	e.str(m.URI, "uri")
	return e.result(b)
}

// DecodeBody implements Message.
func (m *Goaway) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() || v < Lite04 {
		return versionErr("GOAWAY", v)
	}
	d := newDecoder(body, "GOAWAY")
	*m = Goaway{URI: d.str("uri")}
	return d.finish()
}

// SessionInfo travels on the lite-01/02 session stream after SETUP.
type SessionInfo struct {
	// Bitrate is the sender's bandwidth estimate in bits per second; 0 means
	// unknown.
	Bitrate uint64
}

// AppendBody implements Message.
func (m *SessionInfo) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.UsesSetup() {
		return b, versionErr("SESSION_INFO", v)
	}
	e := encoder{b: b, msg: "SESSION_INFO"}
	e.varint(m.Bitrate, "bitrate")
	return e.result(b)
}

// DecodeBody implements Message.
func (m *SessionInfo) DecodeBody(body []byte, v Version) error {
	if !v.UsesSetup() {
		return versionErr("SESSION_INFO", v)
	}
	d := newDecoder(body, "SESSION_INFO")
	*m = SessionInfo{Bitrate: d.varint("bitrate")}
	return d.finish()
}
