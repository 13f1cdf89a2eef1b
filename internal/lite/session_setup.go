package lite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// implementation is what this engine calls itself in SETUP parameters.
const implementation = "moqgo"

// SetupStream is the stream that carried a compat SETUP exchange; after a
// lite-01/02 exchange it stays open as the session stream (see New).
type SetupStream struct {
	cs *controlStream
	// Version is the version code the exchange chose.
	Version uint64
}

// ExchangeSetup runs the compat SETUP exchange (CLIENT_SETUP/SERVER_SETUP in
// the IETF draft-14 layout) that selects a version when the connection's
// protocol does not: the client offers offer, most preferred first; the
// server picks the first offered version it also has in offer. ctx bounds the
// exchange; when it ends first the stream is reset.
func ExchangeSetup(ctx context.Context, conn transport.Session, offer []uint64, client bool) (*SetupStream, error) {
	if client {
		return setupClient(ctx, conn, offer)
	}
	return setupServer(ctx, conn, offer)
}

// setupParams are the SETUP parameters we send.
func setupParams() Params {
	var p Params
	p.SetBytes(ParamImplementation, []byte(implementation))
	return p
}

func setupClient(ctx context.Context, conn transport.Session, offer []uint64) (*SetupStream, error) {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, handshakeError(ctx, err)
	}
	cs := newControlStream(st)
	stop := context.AfterFunc(ctx, func() { cs.reset(moq.ErrTimeout) })
	defer stop()

	err = cs.send(ctx, func(b []byte) ([]byte, error) {
		return AppendClientSetup(b, &ClientSetup{Versions: offer, Params: setupParams()})
	})
	if err != nil {
		return nil, handshakeError(ctx, err)
	}
	var reply ServerSetup
	if err := ReadServerSetup(cs.r, &reply); err != nil {
		return nil, handshakeError(ctx, err)
	}
	if !slices.Contains(offer, reply.Version) {
		cs.reset(moq.ErrVersion)
		return nil, fmt.Errorf("%w: server chose %#x, which was not offered", moq.ErrVersion, reply.Version)
	}
	return &SetupStream{cs: cs, Version: reply.Version}, nil
}

func setupServer(ctx context.Context, conn transport.Session, supported []uint64) (*SetupStream, error) {
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, handshakeError(ctx, err)
	}
	cs := newControlStream(st)
	stop := context.AfterFunc(ctx, func() { cs.reset(moq.ErrTimeout) })
	defer stop()

	var hello ClientSetup
	if err := ReadClientSetup(cs.r, &hello); err != nil {
		return nil, handshakeError(ctx, err)
	}
	var chosen uint64
	for _, v := range hello.Versions {
		if slices.Contains(supported, v) {
			chosen = v
			break
		}
	}
	if chosen == 0 {
		cs.reset(moq.ErrVersion)
		return nil, fmt.Errorf("%w: client offered none of our versions", moq.ErrVersion)
	}
	err = cs.send(ctx, func(b []byte) ([]byte, error) {
		return AppendServerSetup(b, &ServerSetup{Version: chosen, Params: setupParams()})
	})
	if err != nil {
		return nil, handshakeError(ctx, err)
	}
	return &SetupStream{cs: cs, Version: chosen}, nil
}

// handshakeError explains why a SETUP exchange failed.
func handshakeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: SETUP not completed: %v", moq.ErrTimeout, context.Cause(ctx))
	}
	if wire.IsDecodeError(err) {
		return decodeError("SETUP", err)
	}
	if errors.Is(err, io.EOF) {
		// The peer finished the stream without sending SETUP.
		return fmt.Errorf("%w: setup stream ended before SETUP", moq.ErrProtocolViolation)
	}
	return streamError(err)
}
