package qmux

import (
	"fmt"

	"github.com/moqgo/moq/internal/wire"
)

// parseVarint decodes one QUIC varint from the front of p (non-minimal
// encodings accepted); truncation is a frame encoding error.
func parseVarint(p []byte) (uint64, int, error) {
	v, n, err := wire.ParseVarint(p)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: truncated varint", FrameEncodingError)
	}
	return v, n, nil
}
