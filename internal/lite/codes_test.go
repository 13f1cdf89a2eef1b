package lite_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/lite"
)

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		err  error
		code uint32
	}{
		{moq.ErrCancel, 0}, {moq.ErrRequiredExtension, 1}, {moq.ErrOld, 2}, {moq.ErrTimeout, 3},
		{moq.ErrTransport, 4}, {moq.ErrDecode, 5}, {moq.ErrUnauthorized, 6}, {moq.ErrVersion, 9},
		{moq.ErrUnexpectedStream, 10}, {moq.ErrBoundsExceeded, 11}, {moq.ErrDuplicate, 12},
		{moq.ErrNotFound, 13}, {moq.ErrWrongSize, 14}, {moq.ErrProtocolViolation, 15},
		{moq.ErrUnexpectedMessage, 16}, {moq.ErrUnsupported, 17}, {moq.ErrDropped, 24},
		{moq.ErrClosed, 25}, {moq.ErrCacheFull, 26},
	}
	for _, tt := range tests {
		if got := lite.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
		if back := lite.ErrorFromCode(tt.code); back != tt.err {
			t.Errorf("ErrorFromCode(%d) = %v, want the sentinel %v", tt.code, back, tt.err)
		}
		wrapped := fmt.Errorf("stream: %w", tt.err)
		if lite.ErrorCode(wrapped) != tt.code || !errors.Is(wrapped, lite.ErrorFromCode(tt.code)) {
			t.Errorf("wrapped %v lost its code", tt.err)
		}
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
		{moq.AppError(7), 71},
		{fmt.Errorf("wrapped: %w", moq.AppError(0xffff)), 64 + 0xffff},
	}
	for _, tt := range tests {
		if got := lite.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestAppErrorCodes(t *testing.T) {
	if got := lite.ErrorFromCode(364); got != moq.AppError(300) {
		t.Fatalf("ErrorFromCode(364) = %v, want AppError(300)", got)
	}
	if got := lite.ErrorFromCode(64 + 0xffff); !errors.Is(got, moq.AppError(0xffff)) {
		t.Fatalf("largest app code: %v", got)
	}
}

func TestErrorFromUnknownCode(t *testing.T) {
	for _, code := range []uint32{7, 18, 63, 64 + 0x10000, 1<<32 - 1} {
		err := lite.ErrorFromCode(code)
		if lite.ErrorCode(err) != code {
			t.Errorf("ErrorFromCode(%d) has code %d", code, lite.ErrorCode(err))
		}
		if errors.Is(err, moq.ErrTransport) || errors.Is(err, moq.ErrCancel) {
			t.Errorf("ErrorFromCode(%d) matches a sentinel", code)
		}
	}
	if got := lite.ErrorFromCode(7).Error(); got != "moq-lite error code 7" {
		t.Errorf("message %q", got)
	}
}
