package moq

import (
	"errors"
	"fmt"
	"testing"
)

func TestAppError(t *testing.T) {
	err := fmt.Errorf("track: %w", AppError(300))
	if !errors.Is(err, AppError(300)) {
		t.Fatal("a wrapped application error does not match its code")
	}
	if errors.Is(err, AppError(301)) {
		t.Fatal("different application codes match")
	}
	if got := AppError(300).Error(); got != "moq: application error 300" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{ErrCancel, ErrDropped, ErrClosed, ErrNotFound, ErrDuplicate, ErrUnauthorized,
		ErrWrongSize, ErrBoundsExceeded, ErrCacheFull, ErrOld, ErrTimeout, ErrTransport, ErrDecode,
		ErrProtocolViolation, ErrUnexpectedStream, ErrUnexpectedMessage, ErrVersion, ErrUnsupported,
		ErrRequiredExtension}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, i != j)
			}
		}
	}
}
