package lite

import (
	"fmt"
	"io"
	"math"

	"github.com/moqgo/moq/internal/wire"
)

// Compat SETUP parameter ids (IETF setup parameters). Even ids carry a
// varint, odd ids a byte string.
const (
	ParamPath               uint64 = 1
	ParamMaxRequestID       uint64 = 2
	ParamAuthorizationToken uint64 = 3
	ParamAuthority          uint64 = 5
	ParamImplementation     uint64 = 7
)

// Param is one compat SETUP parameter. An even ID carries Value and no Bytes;
// an odd ID carries Bytes and a zero Value.
type Param struct {
	ID    uint64
	Value uint64
	Bytes []byte
}

// Params is an ordered parameter list, at most MaxParams long with distinct
// ids. Decoding keeps wire order; encoding writes the varint-valued
// parameters first and then the byte-valued ones, each group in slice order
// (the reference JavaScript layout).
type Params []Param

// Varint returns the value of the even-id parameter id.
func (p Params) Varint(id uint64) (uint64, bool) {
	for _, x := range p {
		if x.ID == id && id%2 == 0 {
			return x.Value, true
		}
	}
	return 0, false
}

// Bytes returns the value of the odd-id parameter id.
func (p Params) Bytes(id uint64) ([]byte, bool) {
	for _, x := range p {
		if x.ID == id && id%2 == 1 {
			return x.Bytes, true
		}
	}
	return nil, false
}

// SetVarint sets even-id parameter id to v, replacing an existing entry in
// place or appending a new one. An odd id is recorded as given and makes
// encoding fail.
func (p *Params) SetVarint(id, v uint64) {
	p.set(Param{ID: id, Value: v})
}

// SetBytes sets odd-id parameter id to b, replacing an existing entry in
// place or appending a new one. An even id is recorded as given and makes
// encoding fail.
func (p *Params) SetBytes(id uint64, b []byte) {
	p.set(Param{ID: id, Bytes: b})
}

func (p *Params) set(x Param) {
	for i := range *p {
		if (*p)[i].ID == x.ID {
			(*p)[i] = x
			return
		}
	}
	*p = append(*p, x)
}

func (p Params) appendTo(e *encoder) {
	if len(p) > MaxParams {
		e.fail("parameters", fmt.Errorf("%d entries, limit %d: %w", len(p), MaxParams, wire.ErrTooLarge))
		return
	}
	for i, x := range p {
		switch {
		case x.ID%2 == 0 && len(x.Bytes) > 0:
			e.fail("parameter", fmt.Errorf("even id %d with a byte value: %w", x.ID, wire.ErrInvalid))
		case x.ID%2 == 1 && x.Value != 0:
			e.fail("parameter", fmt.Errorf("odd id %d with a varint value: %w", x.ID, wire.ErrInvalid))
		}
		for _, y := range p[:i] {
			if y.ID == x.ID {
				e.fail("parameter", fmt.Errorf("duplicate id %d: %w", x.ID, wire.ErrInvalid))
			}
		}
	}
	e.varint(uint64(len(p)), "parameters")
	for _, x := range p {
		if x.ID%2 == 0 {
			e.varint(x.ID, "parameter id")
			e.varint(x.Value, "parameter value")
		}
	}
	for _, x := range p {
		if x.ID%2 == 1 {
			e.varint(x.ID, "parameter id")
			e.bytes(x.Bytes, "parameter value")
		}
	}
}

func decodeParams(d *decoder) Params {
	n, capHint := d.count(MaxParams, "parameters")
	if n == 0 {
		return nil
	}
	p := make(Params, 0, capHint)
	for i := 0; i < n && d.err == nil; i++ {
		x := Param{ID: d.varint("parameter id")}
		if x.ID%2 == 0 {
			x.Value = d.varint("parameter value")
		} else {
			x.Bytes = d.bytes("parameter value")
		}
		for _, y := range p {
			if y.ID == x.ID {
				d.fail("parameter", fmt.Errorf("duplicate id %d: %w", x.ID, wire.ErrInvalid))
			}
		}
		p = append(p, x)
	}
	return p
}

// ClientSetup is the compat CLIENT_SETUP (IETF draft-14 layout) that opens
// the lite-01/02 setup stream. On the wire it is ClientSetupType, then a
// 16-bit size (see AppendU16Message and wire.Reader.ReadU16Message), then the
// body. Its layout does not depend on the version, so AppendBody and
// DecodeBody ignore v.
type ClientSetup struct {
	// Versions are the offered version codes, most preferred first, at most
	// MaxVersions.
	Versions []uint64
	// Params are the setup parameters.
	Params Params
}

// AppendBody implements Message.
func (m *ClientSetup) AppendBody(b []byte, _ Version) ([]byte, error) {
	e := encoder{b: b, msg: "CLIENT_SETUP"}
	e.count(len(m.Versions), MaxVersions, "versions")
	for _, x := range m.Versions {
		e.varint(x, "version")
	}
	m.Params.appendTo(&e)
	return e.result(b)
}

// DecodeBody implements Message.
func (m *ClientSetup) DecodeBody(body []byte, _ Version) error {
	d := newDecoder(body, "CLIENT_SETUP")
	*m = ClientSetup{Versions: decodeVersions(&d)}
	m.Params = decodeParams(&d)
	return d.finish()
}

func decodeVersions(d *decoder) []uint64 {
	n, capHint := d.count(MaxVersions, "versions")
	if n == 0 {
		return nil
	}
	vs := make([]uint64, 0, capHint)
	for i := 0; i < n && d.err == nil; i++ {
		vs = append(vs, d.varint("version"))
	}
	return vs
}

// AppendClientSetup appends what a client writes first on the setup stream:
// ClientSetupType, the 16-bit body size and the CLIENT_SETUP body. On error it
// returns b unchanged.
func AppendClientSetup(b []byte, m *ClientSetup) ([]byte, error) {
	return appendSetup(b, ClientSetupType, m)
}

// ReadClientSetup reads ClientSetupType and a CLIENT_SETUP from the setup
// stream into m. It returns io.EOF if the stream ended before any byte,
// io.ErrUnexpectedEOF if it ended later, and an error wrapping
// wire.ErrInvalid for a different message type.
func ReadClientSetup(r *wire.Reader, m *ClientSetup) error {
	return readSetup(r, ClientSetupType, m)
}

// AppendServerSetup appends the server's reply on the setup stream:
// ServerSetupType, the 16-bit body size and the SERVER_SETUP body. On error it
// returns b unchanged.
func AppendServerSetup(b []byte, m *ServerSetup) ([]byte, error) {
	return appendSetup(b, ServerSetupType, m)
}

// ReadServerSetup reads ServerSetupType and a SERVER_SETUP from the setup
// stream into m, like ReadClientSetup.
func ReadServerSetup(r *wire.Reader, m *ServerSetup) error {
	return readSetup(r, ServerSetupType, m)
}

func appendSetup(b []byte, t ControlType, m Message) ([]byte, error) {
	out, err := AppendU16Message(wire.AppendVarint(b, uint64(t)), m, 0)
	if err != nil {
		return b, err
	}
	return out, nil
}

func readSetup(r *wire.Reader, t ControlType, m Message) error {
	x, err := r.ReadVarint()
	if err != nil {
		return err
	}
	if ControlType(x) != t {
		return fmt.Errorf("lite: got message type %s, want %s: %w", ControlType(x), t, wire.ErrInvalid)
	}
	body, err := r.ReadU16Message(math.MaxUint16)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	return m.DecodeBody(body, 0)
}

// ServerSetup is the compat SERVER_SETUP (IETF draft-14 layout) the server
// answers on the setup stream, after ServerSetupType and a 16-bit size.
// AppendBody and DecodeBody ignore v.
type ServerSetup struct {
	// Version is the selected version code.
	Version uint64
	// Params are the setup parameters.
	Params Params
}

// AppendBody implements Message.
func (m *ServerSetup) AppendBody(b []byte, _ Version) ([]byte, error) {
	e := encoder{b: b, msg: "SERVER_SETUP"}
	e.varint(m.Version, "version")
	m.Params.appendTo(&e)
	return e.result(b)
}

// DecodeBody implements Message.
func (m *ServerSetup) DecodeBody(body []byte, _ Version) error {
	d := newDecoder(body, "SERVER_SETUP")
	*m = ServerSetup{Version: d.varint("version")}
	m.Params = decodeParams(&d)
	return d.finish()
}

// Extension is one extension of the native lite session messages; its value
// is always a byte string.
type Extension struct {
	ID    uint64
	Value []byte
}

// Extensions is an ordered extension list, at most MaxParams long with
// distinct ids, encoded in slice order.
type Extensions []Extension

// Get returns the value of extension id.
func (x Extensions) Get(id uint64) ([]byte, bool) {
	for _, e := range x {
		if e.ID == id {
			return e.Value, true
		}
	}
	return nil, false
}

// Set sets extension id to v, replacing an existing entry in place or
// appending a new one.
func (x *Extensions) Set(id uint64, v []byte) {
	for i := range *x {
		if (*x)[i].ID == id {
			(*x)[i].Value = v
			return
		}
	}
	*x = append(*x, Extension{ID: id, Value: v})
}

func (x Extensions) appendTo(e *encoder) {
	for i, a := range x {
		for _, b := range x[:i] {
			if a.ID == b.ID {
				e.fail("extension", fmt.Errorf("duplicate id %d: %w", a.ID, wire.ErrInvalid))
			}
		}
	}
	e.count(len(x), MaxParams, "extensions")
	for _, a := range x {
		e.varint(a.ID, "extension id")
		e.bytes(a.Value, "extension value")
	}
}

func decodeExtensions(d *decoder) Extensions {
	n, capHint := d.count(MaxParams, "extensions")
	if n == 0 {
		return nil
	}
	x := make(Extensions, 0, capHint)
	for i := 0; i < n && d.err == nil; i++ {
		a := Extension{ID: d.varint("extension id"), Value: d.bytes("extension value")}
		if _, dup := x.Get(a.ID); dup {
			d.fail("extension", fmt.Errorf("duplicate id %d: %w", a.ID, wire.ErrInvalid))
		}
		x = append(x, a)
	}
	return x
}

// SessionClient is the native lite session client body ("lite legacy" SETUP:
// varint size instead of 16-bit, extension values always byte strings). The
// reference connect/accept no longer send it. AppendBody and DecodeBody
// ignore v.
type SessionClient struct {
	// Versions are the offered version codes, at most MaxVersions.
	Versions []uint64
	// Extensions are the session extensions.
	Extensions Extensions
}

// AppendBody implements Message.
func (m *SessionClient) AppendBody(b []byte, _ Version) ([]byte, error) {
	e := encoder{b: b, msg: "SESSION_CLIENT"}
	e.count(len(m.Versions), MaxVersions, "versions")
	for _, x := range m.Versions {
		e.varint(x, "version")
	}
	m.Extensions.appendTo(&e)
	return e.result(b)
}

// DecodeBody implements Message.
func (m *SessionClient) DecodeBody(body []byte, _ Version) error {
	d := newDecoder(body, "SESSION_CLIENT")
	*m = SessionClient{Versions: decodeVersions(&d)}
	m.Extensions = decodeExtensions(&d)
	return d.finish()
}

// SessionServer is the native lite session server body, the answer to
// SessionClient. AppendBody and DecodeBody ignore v.
type SessionServer struct {
	// Version is the selected version code.
	Version uint64
	// Extensions are the session extensions.
	Extensions Extensions
}

// AppendBody implements Message.
func (m *SessionServer) AppendBody(b []byte, _ Version) ([]byte, error) {
	e := encoder{b: b, msg: "SESSION_SERVER"}
	e.varint(m.Version, "version")
	m.Extensions.appendTo(&e)
	return e.result(b)
}

// DecodeBody implements Message.
func (m *SessionServer) DecodeBody(body []byte, _ Version) error {
	d := newDecoder(body, "SESSION_SERVER")
	*m = SessionServer{Version: d.varint("version")}
	m.Extensions = decodeExtensions(&d)
	return d.finish()
}
