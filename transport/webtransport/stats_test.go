package webtransport

import (
	"testing"

	"github.com/moqgo/moq/transport/transporttest"
)

func TestConnectionStats(t *testing.T) { transporttest.Stats(t, pair) }
