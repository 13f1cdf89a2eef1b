package webtransport

import (
	"errors"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/transport"
)

// WebTransport application error codes are carried in a reserved range of the
// HTTP/3 error space (draft-ietf-webtrans-http3, "Resetting Data Streams"):
// code n maps to firstHTTPCode + n + n/0x1e, skipping the HTTP/3 GREASE code
// points 0x1f*k + 0x21.
const (
	firstHTTPCode = 0x52e4a40fa8db
	lastHTTPCode  = 0x52e5ac983162 // codeToHTTP(math.MaxUint32)
)

// codeToHTTP maps a WebTransport application error code into HTTP/3 space.
func codeToHTTP(n uint32) uint64 {
	return firstHTTPCode + uint64(n) + uint64(n)/0x1e
}

// codeFromHTTP is the inverse of codeToHTTP. It reports false for codes
// outside the WebTransport range and for GREASE code points.
func codeFromHTTP(h uint64) (uint32, bool) {
	if h < firstHTTPCode || h > lastHTTPCode || (h-0x21)%0x1f == 0 {
		return 0, false
	}
	shifted := h - firstHTTPCode
	return uint32(shifted - shifted/0x1f), true
}

// connCloseError interprets a QUIC CONNECTION_CLOSE of a connection that
// carried one WebTransport session: a code in the WebTransport range is that
// session's code, and H3_NO_ERROR is a clean close with code 0.
func connCloseError(ae *quicgo.ApplicationError) (*transport.SessionError, bool) {
	if ae.ErrorCode == quicgo.ApplicationErrorCode(http3.ErrCodeNoError) {
		return &transport.SessionError{Reason: ae.ErrorMessage, Remote: ae.Remote}, true
	}
	if code, ok := codeFromHTTP(uint64(ae.ErrorCode)); ok {
		return &transport.SessionError{Code: code, Reason: ae.ErrorMessage, Remote: ae.Remote}, true
	}
	return nil, false
}

// mapError translates webtransport-go and quic-go errors into the transport
// error types; other errors, including nil and io.EOF, are returned as is.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*wt.StreamError](err); ok {
		return &transport.StreamError{Code: uint32(se.ErrorCode), Remote: se.Remote}
	}
	if se, ok := errors.AsType[*wt.SessionError](err); ok {
		return &transport.SessionError{Code: uint32(se.ErrorCode), Reason: se.Message, Remote: se.Remote}
	}
	if ae, ok := errors.AsType[*quicgo.ApplicationError](err); ok {
		if se, ok := connCloseError(ae); ok {
			return se
		}
	}
	return err
}
