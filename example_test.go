package moq_test

import (
	"context"
	"fmt"
	"io"

	"github.com/moqgo/moq"
)

// A track is written group by group and read by any number of consumers.
func Example() {
	ctx := context.Background()

	track := moq.NewTrack(moq.Track{Name: "chat", Priority: 1})
	defer track.Close()

	// A consumer created now sees every group written from here on, and
	// the groups still cached from before.
	sub := track.Consume()
	defer sub.Close()

	// One group per message burst; each group holds ordered frames.
	group, err := track.AppendGroup()
	if err != nil {
		panic(err)
	}
	_ = group.WriteFrame([]byte("hello"))
	_ = group.WriteFrame([]byte("world"))
	_ = group.Finish()
	group.Close()

	// A single-frame group in one call, then the end of the track.
	_ = track.WriteFrame([]byte("bye"))
	_ = track.Finish()

	for {
		g, err := sub.NextGroup(ctx)
		if err != nil {
			panic(err)
		}
		if g == nil {
			break // the track finished
		}
		for {
			frame, err := g.ReadFrame(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				panic(err)
			}
			fmt.Printf("group %d: %s\n", g.Sequence(), frame)
		}
	}
	// Output:
	// group 0: hello
	// group 0: world
	// group 1: bye
}
