package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// The clock is the reference implementation's "hello world", wire-compatible
// with it: track "seconds" carries one group per minute whose first frame is
// "YYYY-MM-DD HH:MM:" (UTC) followed by one "SS" frame per second.

func runClock(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "pub" && args[0] != "sub") {
		fmt.Fprintln(stderr, "usage: moq clock pub|sub --url URL [--broadcast NAME] [--track NAME]")
		return errUsage
	}
	role := args[0]
	fs := flag.NewFlagSet("clock "+role, flag.ContinueOnError)
	var c clientFlags
	c.register(fs, "clock", "seconds")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: moq clock %s --url URL [--broadcast NAME] [--track NAME]\n", role)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	if err := c.check(fs); err != nil {
		return err
	}
	if role == "pub" {
		return clockPub(ctx, &c, stderr)
	}
	return clockSub(ctx, &c, stdout, stderr)
}

func clockPub(ctx context.Context, c *clientFlags, stderr io.Writer) error {
	origin := moq.NewOrigin()
	broadcast, err := origin.CreateBroadcast(moq.NewPath(c.broadcast))
	if err != nil {
		return fmt.Errorf("cannot publish broadcast %q: %w", c.broadcast, err)
	}
	defer broadcast.Close()
	track, err := broadcast.CreateTrack(moq.Track{Name: c.track})
	if err != nil {
		return err
	}
	defer track.Close()

	sess, err := c.dial(ctx, session.Config{Publish: origin.Consume()}, stderr)
	if err != nil {
		return err
	}
	defer sess.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-runCtx.Done():
		}
	}()
	err = publishClock(runCtx, track, time.Now)
	if sess.Err() != nil {
		return fmt.Errorf("session ended: %w", sess.Err())
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// publishClock writes the clock into track until ctx ends.
func publishClock(ctx context.Context, track *moq.TrackProducer, now func() time.Time) error {
	t := now().UTC()
	// Start the sequence at the current minute, as the reference does.
	seq := uint64(t.Minute())
	for {
		group, err := track.CreateGroup(seq)
		if err != nil {
			return err
		}
		seq++
		t, err = writeMinute(ctx, group, t, now)
		group.Close()
		if err != nil {
			return err
		}
	}
}

// writeMinute writes one minute's group starting at t and returns the time
// that belongs to the next minute.
func writeMinute(ctx context.Context, group *moq.GroupProducer, t time.Time, now func() time.Time) (time.Time, error) {
	if err := group.WriteFrame([]byte(t.Format("2006-01-02 15:04:"))); err != nil {
		return t, err
	}
	minute := t.Minute()
	for {
		if err := group.WriteFrame([]byte(t.Format("05"))); err != nil {
			return t, err
		}
		next := t.Truncate(time.Second).Add(time.Second)
		timer := time.NewTimer(next.Sub(now()))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			_ = group.Finish()
			return t, ctx.Err()
		}
		t = now().UTC()
		if t.Minute() != minute {
			return t, group.Finish()
		}
	}
}

// clockSub prints the clock while its broadcast is announced, and waits for
// it while it is not.
func clockSub(ctx context.Context, c *clientFlags, stdout, stderr io.Writer) error {
	path := moq.NewPath(c.broadcast)
	origin := moq.NewOrigin()
	// The new origin allows every path.
	consume, _ := origin.PublishOnly(path)
	view, _ := origin.Consume().ConsumeOnly(path)
	announced := view.Announcements()
	defer announced.Close()

	sess, err := c.dial(ctx, session.Config{Consume: consume}, stderr)
	if err != nil {
		return err
	}
	defer sess.Close()

	fmt.Fprintf(stderr, "waiting for broadcast %q\n", c.broadcast)
	var stopPrinting context.CancelFunc = func() {}
	defer func() { stopPrinting() }()
	printed := make(chan error, 1)
	for {
		a, err := announced.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		stopPrinting()
		if a.Broadcast == nil {
			fmt.Fprintf(stderr, "broadcast %q is offline, waiting\n", a.Path)
			continue
		}
		track, err := a.Broadcast.SubscribeTrack(moq.Track{Name: c.track})
		if err != nil {
			return err
		}
		printCtx, cancel := context.WithCancel(ctx)
		stopPrinting = func() {
			cancel()
			<-printed
			track.Close()
		}
		go func() { printed <- printClock(printCtx, track, stdout) }()
	}
}

// printClock prints "YYYY-MM-DD HH:MM:SS" for every second frame.
func printClock(ctx context.Context, track *moq.TrackConsumer, w io.Writer) error {
	for {
		group, err := track.NextGroup(ctx)
		if err != nil || group == nil {
			return err
		}
		base, err := group.ReadFrame(ctx)
		if err != nil {
			continue
		}
		for {
			sec, err := group.ReadFrame(ctx)
			if errors.Is(err, io.EOF) || (err != nil && ctx.Err() == nil) {
				break
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s%s\n", base, sec)
		}
	}
}
