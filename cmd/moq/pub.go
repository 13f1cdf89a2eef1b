package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// runPub publishes stdin as one track. Framing: every line (without its "\n")
// is one frame; --group-every N starts a new group every N lines. At the end of
// stdin the track is finished and the session closed after delivering it.
func runPub(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	var c clientFlags
	c.register(fs, "", "0")
	groupEvery := fs.Int("group-every", 1, "lines per group (each group is delivered reliably and in order)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: moq pub --url URL --broadcast NAME [--track NAME] [--group-every N] < input")
		fmt.Fprintln(fs.Output(), "Publishes stdin, one frame per line.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := c.check(fs); err != nil {
		return err
	}
	if *groupEvery < 1 {
		return fmt.Errorf("--group-every must be at least 1, got %d", *groupEvery)
	}

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

	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		readErr <- readLines(ctx, stdin, lines)
	}()

	var group *moq.GroupProducer
	frames := 0
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
				if group != nil {
					_ = group.Finish()
					group.Close()
				}
				if err := track.Finish(); err != nil {
					return err
				}
				return sess.Close()
			}
			if group == nil {
				if group, err = track.AppendGroup(); err != nil {
					return err
				}
				frames = 0
			}
			if err := group.WriteFrame(line); err != nil {
				return err
			}
			// A full group is finished at once, not when the next line comes.
			if frames++; frames == *groupEvery {
				_ = group.Finish()
				group.Close()
				group = nil
			}
		case <-sess.Done():
			if err := sess.Err(); err != nil {
				return fmt.Errorf("session ended: %w", err)
			}
			return errors.New("session closed by the relay")
		case <-ctx.Done():
			return nil
		}
	}
}

// readLines sends each line of r (without "\n" or "\r\n") until EOF, then closes lines.
func readLines(ctx context.Context, r io.Reader, lines chan<- []byte) error {
	defer close(lines)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 || err == nil {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			select {
			case lines <- line:
			case <-ctx.Done():
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
