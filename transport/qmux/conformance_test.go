package qmux

import (
	"fmt"
	"testing"

	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/transporttest"
)

func pairFunc(offer []string) transporttest.Pair {
	return func(tb testing.TB) (transport.Session, transport.Session) {
		c, s := newPair(tb, offer)
		return c, s
	}
}

func TestConformance(t *testing.T) {
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			transporttest.Run(t, pairFunc(fr.offer))
		})
	}
}

func BenchmarkQMuxThroughput(b *testing.B) {
	for _, fr := range framings {
		for _, streams := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/streams=%d", fr.name, streams), func(b *testing.B) {
				transporttest.Throughput(b, pairFunc(fr.offer), streams, 64<<10)
			})
		}
	}
}
