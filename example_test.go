package moq_test

import (
	"context"
	"fmt"

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

	// Groups and Frames end at the clean end of the track and of each
	// group (io.EOF from NextGroup and ReadFrame); any other error is
	// yielded once.
	for g, err := range sub.Groups(ctx) {
		if err != nil {
			panic(err)
		}
		for frame, err := range g.Frames(ctx) {
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

// An origin maps paths to broadcasts. An OriginConsumer is a plain view of
// it; Announcements opens a queue of what the view sees, which must be
// closed.
func ExampleOriginConsumer_Announcements() {
	origin := moq.NewOrigin()
	rooms, err := origin.WithRoot("rooms")
	if err != nil {
		panic(err)
	}

	lobby, err := rooms.CreateBroadcast("lobby")
	if err != nil {
		panic(err)
	}
	defer lobby.Close()

	// Publishing outside a restricted scope is refused.
	onlyLobby, err := rooms.PublishOnly("lobby")
	if err != nil {
		panic(err)
	}
	_, err = onlyLobby.CreateBroadcast("stage")
	fmt.Println("stage refused:", err != nil)

	announced := rooms.Consume().Announcements()
	defer announced.Close()

	stage, err := rooms.CreateBroadcast("stage")
	if err != nil {
		panic(err)
	}
	stage.Close() // ending a broadcast unannounces it

	// TryNext reads what is queued without waiting.
	for {
		a, ok := announced.TryNext()
		if !ok {
			break
		}
		fmt.Printf("%s active=%v\n", a.Path, a.Broadcast != nil)
	}
	// Output:
	// stage refused: true
	// lobby active=true
	// stage active=true
	// stage active=false
}
