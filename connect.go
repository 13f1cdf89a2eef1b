package moq

import (
	"context"
	"fmt"
	"slices"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// implementation is what this package calls itself in SETUP parameters.
const implementation = "moqgo"

// Connect runs the client side of the moq-lite handshake on an established
// transport connection and starts the session. The version comes from the
// connection's protocol (moq-lite-03/04), or from a SETUP exchange when the
// protocol is "moql" or empty. ctx bounds the handshake only. On failure the
// connection is closed.
func Connect(ctx context.Context, conn transport.Session, cfg *Config) (*Session, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	v, setup, err := negotiate(ctx, conn, cfg, true)
	if err != nil {
		_ = conn.CloseWithError(ErrorCode(err), err.Error())
		return nil, err
	}
	return newSession(conn, v, cfg, setup), nil
}

// Accept runs the server side of the handshake on an accepted transport
// connection and starts the session; see Connect.
func Accept(ctx context.Context, conn transport.Session, cfg *Config) (*Session, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	v, setup, err := negotiate(ctx, conn, cfg, false)
	if err != nil {
		_ = conn.CloseWithError(ErrorCode(err), err.Error())
		return nil, err
	}
	return newSession(conn, v, cfg, setup), nil
}

// negotiate picks the version: by protocol when it names one, else by SETUP.
func negotiate(ctx context.Context, conn transport.Session, cfg *Config, client bool) (lite.Version, *controlStream, error) {
	allowed := cfg.versions()
	proto := conn.Protocol()
	if v, ok := lite.VersionFromALPN(proto); ok {
		if !slices.Contains(allowed, Version(v)) {
			return 0, nil, fmt.Errorf("%w: %s is not enabled", ErrVersion, v)
		}
		return v, nil, nil
	}
	if proto != "" && proto != lite.ALPNSetup {
		return 0, nil, fmt.Errorf("%w: unknown protocol %q", ErrVersion, proto)
	}
	var offer []uint64
	for _, v := range allowed {
		if hasAnnounceInit(lite.Version(v)) {
			offer = append(offer, uint64(v))
		}
	}
	if len(offer) == 0 {
		return 0, nil, fmt.Errorf("%w: no enabled version is negotiated by SETUP", ErrVersion)
	}
	if client {
		return setupClient(ctx, conn, offer)
	}
	return setupServer(ctx, conn, offer)
}

// setupParams are the SETUP parameters we send.
func setupParams() lite.Params {
	var p lite.Params
	p.SetBytes(lite.ParamImplementation, []byte(implementation))
	return p
}

func setupClient(ctx context.Context, conn transport.Session, offer []uint64) (lite.Version, *controlStream, error) {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return 0, nil, streamError(err)
	}
	cs := newControlStream(st)
	stop := context.AfterFunc(ctx, func() { cs.reset(ErrTimeout) })
	defer stop()

	b, err := lite.AppendClientSetup(nil, &lite.ClientSetup{Versions: offer, Params: setupParams()})
	if err != nil {
		return 0, nil, err
	}
	if err := cs.flush(b); err != nil {
		return 0, nil, handshakeError(ctx, err)
	}
	var reply lite.ServerSetup
	if err := lite.ReadServerSetup(cs.r, &reply); err != nil {
		return 0, nil, handshakeError(ctx, err)
	}
	if !slices.Contains(offer, reply.Version) {
		return 0, nil, fmt.Errorf("%w: server chose %#x, which was not offered", ErrVersion, reply.Version)
	}
	return lite.Version(reply.Version), cs, nil
}

func setupServer(ctx context.Context, conn transport.Session, supported []uint64) (lite.Version, *controlStream, error) {
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return 0, nil, handshakeError(ctx, err)
	}
	cs := newControlStream(st)
	stop := context.AfterFunc(ctx, func() { cs.reset(ErrTimeout) })
	defer stop()

	var hello lite.ClientSetup
	if err := lite.ReadClientSetup(cs.r, &hello); err != nil {
		return 0, nil, handshakeError(ctx, err)
	}
	var chosen uint64
	for _, v := range hello.Versions {
		if slices.Contains(supported, v) {
			chosen = v
			break
		}
	}
	if chosen == 0 {
		return 0, nil, fmt.Errorf("%w: client offered none of our versions", ErrVersion)
	}
	b, err := lite.AppendServerSetup(nil, &lite.ServerSetup{Version: chosen, Params: setupParams()})
	if err != nil {
		return 0, nil, err
	}
	if err := cs.flush(b); err != nil {
		return 0, nil, handshakeError(ctx, err)
	}
	return lite.Version(chosen), cs, nil
}

// handshakeError explains why a SETUP exchange failed.
func handshakeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: SETUP not completed: %v", ErrTimeout, context.Cause(ctx))
	}
	if isDecodeError(err) {
		return decodeError("SETUP", err)
	}
	return streamError(err)
}

// isDecodeError reports whether err comes from malformed bytes.
func isDecodeError(err error) bool {
	return wire.IsDecodeError(err)
}
