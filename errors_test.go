package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		err  *Error
		code uint32
	}{
		{ErrCancel, 0}, {ErrRequiredExtension, 1}, {ErrOld, 2}, {ErrTimeout, 3},
		{ErrTransport, 4}, {ErrDecode, 5}, {ErrUnauthorized, 6}, {ErrVersion, 9},
		{ErrUnexpectedStream, 10}, {ErrBoundsExceeded, 11}, {ErrDuplicate, 12},
		{ErrNotFound, 13}, {ErrWrongSize, 14}, {ErrProtocolViolation, 15},
		{ErrUnexpectedMessage, 16}, {ErrUnsupported, 17}, {ErrDropped, 24},
		{ErrClosed, 25}, {ErrCacheFull, 26},
	}
	for _, tt := range tests {
		if tt.err.Code != tt.code {
			t.Errorf("%v has code %d, want %d", tt.err, tt.err.Code, tt.code)
		}
		if got := ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %d", tt.err, got)
		}
		back := ErrorFromCode(tt.code)
		if back != error(tt.err) {
			t.Errorf("ErrorFromCode(%d) = %v, want the sentinel", tt.code, back)
		}
		wrapped := fmt.Errorf("stream: %w", tt.err)
		if ErrorCode(wrapped) != tt.code || !errors.Is(wrapped, ErrorFromCode(tt.code)) {
			t.Errorf("wrapped %v lost its code", tt.err)
		}
	}
	if ErrCancel.Error() != "moq: cancelled" {
		t.Errorf("Error() = %q", ErrCancel.Error())
	}
}

func TestErrorCodeOfOtherErrors(t *testing.T) {
	tests := []struct {
		err  error
		code uint32
	}{
		{nil, 0},
		{context.Canceled, 0},
		{context.DeadlineExceeded, 3},
		{io.ErrUnexpectedEOF, 4},
		{errors.New("boom"), 4},
		{AppError(7), 71},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestAppError(t *testing.T) {
	err := AppError(300)
	var e *Error
	if !errors.As(err, &e) || e.Code != 364 || e.Error() != "moq: app code=300" {
		t.Fatalf("AppError(300) = %#v", err)
	}
	if !errors.Is(ErrorFromCode(364), err) {
		t.Fatal("an app error decoded from the wire does not match")
	}
	if errors.Is(AppError(1), AppError(2)) {
		t.Fatal("different app codes match")
	}
	if got := ErrorFromCode(64 + 0xffff); ErrorCode(got) != 64+0xffff || !errors.Is(got, AppError(0xffff)) {
		t.Fatalf("largest app code: %v", got)
	}
}

func TestErrorFromUnknownCode(t *testing.T) {
	for _, code := range []uint32{7, 18, 63, 64 + 0x10000, 1<<32 - 1} {
		err := ErrorFromCode(code)
		if ErrorCode(err) != code {
			t.Errorf("ErrorFromCode(%d) has code %d", code, ErrorCode(err))
		}
		if errors.Is(err, ErrTransport) || errors.Is(err, ErrCancel) {
			t.Errorf("ErrorFromCode(%d) matches a sentinel", code)
		}
	}
	if got := ErrorFromCode(7).Error(); got != "moq: code=7" {
		t.Errorf("message %q", got)
	}
}
