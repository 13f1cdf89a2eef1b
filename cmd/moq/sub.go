package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// runSub prints one track of a broadcast to stdout, each frame followed by
// "\n", until the track ends.
func runSub(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	var c clientFlags
	c.register(fs, "", "0")
	reconnect := fs.Bool("reconnect", false, "when the connection is lost, connect again and go on after the last group printed")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: moq sub --url URL --broadcast NAME [--track NAME] [--reconnect]")
		fmt.Fprintln(fs.Output(), "Prints the track's frames, one per line, until the track ends.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := c.check(fs); err != nil {
		return err
	}

	var broadcast *session.RemoteBroadcast
	if *reconnect {
		client, err := c.dialClient(ctx, session.Config{}, stderr)
		if err != nil {
			return err
		}
		defer client.Close()
		broadcast = client.ConsumeBroadcast(moq.NewPath(c.broadcast))
	} else {
		sess, err := c.dial(ctx, session.Config{}, stderr)
		if err != nil {
			return err
		}
		defer sess.Close()
		broadcast = sess.ConsumeBroadcast(moq.NewPath(c.broadcast))
	}
	defer broadcast.Close()
	track, err := broadcast.SubscribeTrack(moq.Track{Name: c.track})
	if err != nil {
		return err
	}
	defer track.Close()
	err = printTrack(ctx, track, stdout)
	switch {
	case errors.Is(err, moq.ErrNotFound):
		return fmt.Errorf("broadcast %q (track %q) not found on %s", c.broadcast, c.track, c.url)
	case ctx.Err() != nil:
		return nil
	}
	return err
}

// printTrack writes every frame of every group, in arrival order. A group
// that fails part-way (dropped by the publisher or the relay) is skipped.
func printTrack(ctx context.Context, track *moq.TrackConsumer, w io.Writer) error {
	for group, err := range track.Groups(ctx) {
		if err != nil {
			return err
		}
		for frame, err := range group.Frames(ctx) {
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				break
			}
			if _, err := fmt.Fprintf(w, "%s\n", frame); err != nil {
				return err
			}
		}
	}
	return nil
}
