package transporttest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/moqgo/moq/transport"
)

// Throughput measures one-way transfer from client to server over streams
// concurrent unidirectional streams. One benchmark operation is one Write of
// writeSize bytes, so the reported MB/s is the aggregate goodput.
func Throughput(b *testing.B, pair Pair, streams, writeSize int) {
	if streams < 1 || writeSize < 1 {
		b.Fatalf("Throughput: streams = %d, writeSize = %d; both must be positive", streams, writeSize)
	}
	client, server := pair(b)
	b.Cleanup(func() {
		_ = client.CloseWithError(0, "")
		_ = server.CloseWithError(0, "")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf := payload(1, writeSize)
	b.SetBytes(int64(writeSize))
	b.ResetTimer()

	received := make(chan int64, 1)
	acceptErr := make(chan error, 1)
	go func() {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int64
			first error
		)
		for range streams {
			in, err := server.AcceptUniStream(ctx)
			if err != nil {
				first = fmt.Errorf("AcceptUniStream: %w", err)
				break
			}
			wg.Go(func() {
				n, err := io.Copy(io.Discard, in)
				mu.Lock()
				total += n
				if err != nil && first == nil {
					first = fmt.Errorf("reading: %w", err)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		acceptErr <- first
		received <- total
	}()

	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		writes := b.N / streams
		if i < b.N%streams {
			writes++
		}
		wg.Go(func() {
			errs <- writeStream(ctx, client, buf, writes)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			cancel()
			b.Fatal(err)
		}
	}
	if err := <-acceptErr; err != nil {
		b.Fatal(err)
	}
	total := <-received
	b.StopTimer()
	if want := int64(b.N) * int64(writeSize); total != want {
		b.Fatalf("server received %d bytes, want %d", total, want)
	}
}

func writeStream(ctx context.Context, sess transport.Session, buf []byte, writes int) error {
	s, err := sess.OpenUniStream(ctx)
	if err != nil {
		return fmt.Errorf("OpenUniStream: %w", err)
	}
	for range writes {
		if _, err := s.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return s.Close()
}
