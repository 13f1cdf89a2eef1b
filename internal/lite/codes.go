package lite

import (
	"context"
	"errors"
	"strconv"

	"github.com/moqgo/moq"
)

// The moq-lite error codes of the model's errors, as carried by stream
// resets, session closes and SUBSCRIBE_DROP.
var codes = []struct {
	err  error
	code uint32
}{
	{moq.ErrCancel, 0},
	{moq.ErrRequiredExtension, 1},
	{moq.ErrOld, 2},
	{moq.ErrTimeout, 3},
	{moq.ErrTransport, 4},
	{moq.ErrDecode, 5},
	{moq.ErrUnauthorized, 6},
	{moq.ErrVersion, 9},
	{moq.ErrUnexpectedStream, 10},
	{moq.ErrBoundsExceeded, 11},
	{moq.ErrDuplicate, 12},
	{moq.ErrNotFound, 13},
	{moq.ErrWrongSize, 14},
	{moq.ErrProtocolViolation, 15},
	{moq.ErrUnexpectedMessage, 16},
	{moq.ErrUnsupported, 17},
	{moq.ErrDropped, 24},
	{moq.ErrClosed, 25},
	{moq.ErrCacheFull, 26},
}

// appCodeBase is the first code of moq.AppError codes: AppError n travels
// as appCodeBase+n.
const appCodeBase = 64

// codeError is a code that names no known error.
type codeError uint32

func (e codeError) Error() string { return "moq-lite error code " + strconv.FormatUint(uint64(e), 10) }

// ErrorCode returns the moq-lite code that carries err: the code of the
// model error it wraps (the first in code order when it wraps several),
// appCodeBase+n for moq.AppError n, 0 (cancel) for nil and context.Canceled,
// the timeout code for context.DeadlineExceeded, the code itself for an
// error decoded from an unknown code, and the transport code otherwise.
func ErrorCode(err error) uint32 {
	if err == nil {
		return 0
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	if app, ok := errors.AsType[moq.AppError](err); ok {
		return appCodeBase + uint32(app)
	}
	if unknown, ok := errors.AsType[codeError](err); ok {
		return uint32(unknown)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return 0
	case errors.Is(err, context.DeadlineExceeded):
		return 3
	default:
		return 4
	}
}

// ErrorFromCode returns the error a moq-lite code carries: the model's
// sentinel for a known code (so errors.Is works across the wire), a
// moq.AppError for application codes, and an error naming the code
// otherwise.
func ErrorFromCode(code uint32) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	if code >= appCodeBase && code-appCodeBase <= 0xffff {
		return moq.AppError(code - appCodeBase)
	}
	return codeError(code)
}
