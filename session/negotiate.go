package session

import (
	"context"
	"fmt"
	"slices"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/transport"
)

// Connect runs the client side of the handshake on an established transport
// connection and starts the session. The version comes from the connection's
// protocol (moq-lite-03/04), or from a SETUP exchange when the protocol is
// "moql" or empty. ctx bounds the handshake only. On failure the connection
// is closed.
func Connect(ctx context.Context, conn transport.Session, cfg *Config) (*Session, error) {
	return start(ctx, conn, cfg, true)
}

// Accept runs the server side of the handshake on an accepted transport
// connection and starts the session; see Connect.
func Accept(ctx context.Context, conn transport.Session, cfg *Config) (*Session, error) {
	return start(ctx, conn, cfg, false)
}

func start(ctx context.Context, conn transport.Session, cfg *Config, client bool) (*Session, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	err := cfg.check()
	var v Version
	var setup *lite.SetupStream
	if err == nil {
		v, setup, err = negotiate(ctx, conn, cfg, client)
	}
	if err != nil {
		_ = conn.CloseWithError(lite.ErrorCode(err), err.Error())
		return nil, err
	}
	e := lite.New(conn, lite.Version(v), cfg.engineConfig(), setup)
	return &Session{conn: conn, version: v, e: e}, nil
}

// negotiate picks the version: by protocol when it names one, else by SETUP.
// It returns the SETUP stream, which a lite-01/02 session keeps.
func negotiate(ctx context.Context, conn transport.Session, cfg *Config, client bool) (Version, *lite.SetupStream, error) {
	allowed := cfg.versions()
	proto := conn.Protocol()
	if v, ok := versionFromProtocol(proto); ok {
		if !slices.Contains(allowed, v) {
			return 0, nil, fmt.Errorf("%w: %s is not enabled", moq.ErrVersion, v)
		}
		return v, nil, nil
	}
	if proto != "" && proto != lite.ALPNSetup {
		return 0, nil, fmt.Errorf("%w: unknown protocol %q", moq.ErrVersion, proto)
	}
	var offer []uint64
	for _, v := range allowed {
		if v.usesSetup() {
			offer = append(offer, uint64(v))
		}
	}
	if len(offer) == 0 {
		return 0, nil, fmt.Errorf("%w: no enabled version is negotiated by SETUP", moq.ErrVersion)
	}
	setup, err := lite.ExchangeSetup(ctx, conn, offer, client)
	if err != nil {
		return 0, nil, err
	}
	return Version(setup.Version), setup, nil
}

// engineConfig is what the engine needs of cfg.
func (c *Config) engineConfig() engine.Config {
	return engine.Config{Publish: c.Publish, Consume: c.Consume, Logger: c.logger(), NodeID: c.NodeID,
		Limits: c.Limits, Cache: c.Cache, Stats: c.Stats}
}
