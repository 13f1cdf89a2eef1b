package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
)

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	for _, state := range []string{Ready, Stopping, "STATUS=draining 3 sessions"} {
		if err := Notify(state); err != nil {
			t.Fatalf("Notify(%q): %v", state, err)
		}
		buf := make([]byte, 256)
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != state {
			t.Errorf("the manager got %q, want %q", got, state)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := "moqgo-sdnotify-" + filepath.Base(t.TempDir())
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", "@"+name)
	if err := Notify(Ready); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := ln.Read(buf)
	if err != nil || string(buf[:n]) != Ready {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, Ready)
	}
}

func TestNotifyWithoutManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify(Ready); err != nil {
		t.Fatalf("no manager: %v, want nil", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if err := Notify(Ready); !errors.Is(err, ErrBadSocket) {
		t.Fatalf("relative path: %v, want ErrBadSocket", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := Notify(Ready); err == nil {
		t.Fatal("absent socket: no error")
	}
}
