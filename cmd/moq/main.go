// Command moq runs a moq-lite relay and small clients for it.
//
//	moq relay                     serve on localhost:4443 (QUIC, WebTransport, HTTP)
//	moq pub  --url URL --broadcast NAME [--track NAME]   publish stdin, one frame per line
//	moq sub  --url URL --broadcast NAME [--track NAME]   print frames, one per line
//	moq clock pub|sub --url URL [--broadcast NAME]       the reference clock example
//	moq token generate|sign|verify                       keys and access tokens (moq-token)
//
// Run "moq COMMAND -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: run parses args and does the work.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = []command{
	{"relay", "run a relay server", runRelay},
	{"pub", "publish stdin as a track, one frame per line", runPub},
	{"sub", "print a track's frames to stdout, one per line", runSub},
	{"clock", "publish or print the reference clock track", runClock},
	{"bench", "generate load against a relay and measure it", runBench},
	{"token", "generate keys, sign and verify access tokens", runToken},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; with the default handling
	// back, a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes a command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "moq %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "moq: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: moq COMMAND [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'moq COMMAND -h' for the command's flags.")
}

// errUsage marks a command-line mistake already reported with the usage text.
var errUsage = errors.New("usage")
