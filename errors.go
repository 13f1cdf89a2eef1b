package moq

import (
	"context"
	"errors"
	"strconv"
)

// Error is a moq-lite error together with the code it carries on the wire
// (stream resets and session closes).
//
// Two *Error values match with errors.Is when their codes are equal, so an
// error decoded from the wire with ErrorFromCode matches the local sentinel.
type Error struct {
	Code    uint32
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return "moq: " + e.Message }

// Is reports whether target is an *Error with the same wire code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// The moq-lite errors, with their wire codes.
var (
	ErrCancel            = &Error{0, "cancelled"}
	ErrRequiredExtension = &Error{1, "required extension missing"}
	ErrOld               = &Error{2, "old"}
	ErrTimeout           = &Error{3, "timeout"}
	ErrTransport         = &Error{4, "transport"}
	ErrDecode            = &Error{5, "decode"}
	ErrUnauthorized      = &Error{6, "unauthorized"}
	ErrVersion           = &Error{9, "unsupported version"}
	ErrUnexpectedStream  = &Error{10, "unexpected stream"}
	ErrBoundsExceeded    = &Error{11, "bounds exceeded"}
	ErrDuplicate         = &Error{12, "duplicate"}
	ErrNotFound          = &Error{13, "not found"}
	ErrWrongSize         = &Error{14, "wrong frame size"}
	ErrProtocolViolation = &Error{15, "protocol violation"}
	ErrUnexpectedMessage = &Error{16, "unexpected message"}
	ErrUnsupported       = &Error{17, "unsupported"}
	ErrDropped           = &Error{24, "dropped"}
	ErrClosed            = &Error{25, "closed"}
	ErrCacheFull         = &Error{26, "cache full"}
)

// appCodeBase is the first wire code reserved for application errors.
const appCodeBase = 64

var knownErrors = func() map[uint32]*Error {
	m := make(map[uint32]*Error)
	for _, e := range []*Error{
		ErrCancel, ErrRequiredExtension, ErrOld, ErrTimeout, ErrTransport, ErrDecode,
		ErrUnauthorized, ErrVersion, ErrUnexpectedStream, ErrBoundsExceeded, ErrDuplicate,
		ErrNotFound, ErrWrongSize, ErrProtocolViolation, ErrUnexpectedMessage, ErrUnsupported,
		ErrDropped, ErrClosed, ErrCacheFull,
	} {
		m[e.Code] = e
	}
	return m
}()

// AppError returns an application-defined error; it travels on the wire as
// code+64.
func AppError(code uint16) error {
	return &Error{Code: uint32(code) + appCodeBase, Message: "app code=" + strconv.Itoa(int(code))}
}

// ErrorCode returns the wire code for err: the Code of an *Error found with
// errors.As, 0 (cancel) for nil and context.Canceled, ErrTimeout's code for
// context.DeadlineExceeded, and ErrTransport's code for any other error.
func ErrorCode(err error) uint32 {
	var e *Error
	switch {
	case err == nil:
		return ErrCancel.Code
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return ErrCancel.Code
	case errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout.Code
	default:
		return ErrTransport.Code
	}
}

// ErrorFromCode maps a wire code back to an error: the sentinel for a known
// code (so errors.Is works across the wire), an AppError for application
// codes, and a new *Error carrying the code otherwise.
func ErrorFromCode(code uint32) error {
	if e, ok := knownErrors[code]; ok {
		return e
	}
	if code >= appCodeBase && code-appCodeBase <= 0xffff {
		return AppError(uint16(code - appCodeBase))
	}
	return &Error{Code: code, Message: "code=" + strconv.FormatUint(uint64(code), 10)}
}
