package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/bench"
)

// TestBench runs `moq bench` briefly against a relay and checks the live
// lines, the summary and the JSON lines.
func TestBench(t *testing.T) {
	r := startRelay(t)
	url := "http://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "bench.jsonl")
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"bench", "--url", url, "--preset", "chat-1to1", "--connections", "3", "--rate", "10",
		"--duration", "2s", "--startup", "0", "--report", "500ms", "--output", out}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr: %s", code, stderr.String())
	}
	text := stdout.String()
	// Flags override the preset; the preset's other values stay.
	for _, want := range []string{"connections 3 (publishers all)", "rate 10/s", "size 28:500 B", "conns 3/3", "summary over", "0 lost (100.000% delivered)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output does not contain %q:\n%s", want, text)
		}
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reports []bench.Report
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r bench.Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("JSON line %q: %v", sc.Text(), err)
		}
		reports = append(reports, r)
	}
	if len(reports) < 3 {
		t.Fatalf("%d JSON lines, want live reports and a summary", len(reports))
	}
	last := reports[len(reports)-1]
	if !last.Final || last.GroupsReceived == 0 || last.GroupsLost != 0 || last.Connections != 3 {
		t.Errorf("final JSON line %+v", last)
	}
	for _, r := range reports[:len(reports)-1] {
		if r.Final {
			t.Errorf("live report marked final: %+v", r)
		}
	}
}

func TestBenchErrors(t *testing.T) {
	closed := closedPort(t)
	runErrorCases(t, []errorCase{
		{"missing url", []string{"bench"}, 2, "missing --url"},
		{"bad range", []string{"bench", "--url", "http://127.0.0.1:1/", "--size", "9:1"}, 2, "min is above max"},
		{"unknown preset", []string{"bench", "--url", "http://127.0.0.1:1/", "--preset", "4k-video"}, 1, "hd-video"},
		{"invalid load", []string{"bench", "--url", "http://127.0.0.1:1/", "--group", "2000"}, 1, "group"},
		{"relay down", []string{"bench", "--url", "http://127.0.0.1:" + closed + "/", "--duration", "1m"}, 1, "is the relay running?"},
	})
}
