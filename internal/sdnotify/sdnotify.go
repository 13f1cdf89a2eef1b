// Package sdnotify tells a service manager how a service is doing, with the
// readiness protocol of systemd (sd_notify): datagrams of KEY=VALUE lines
// sent to the unix socket named by $NOTIFY_SOCKET.
package sdnotify

import (
	"errors"
	"net"
	"os"
)

// Service states.
const (
	// Ready: the service has started and serves.
	Ready = "READY=1"
	// Stopping: the service has begun to shut down.
	Stopping = "STOPPING=1"
)

// ErrBadSocket is returned when $NOTIFY_SOCKET names no usable socket.
var ErrBadSocket = errors.New("sdnotify: NOTIFY_SOCKET is not a unix socket path")

// Notify sends state (lines such as Ready or "STATUS=...") to the service
// manager. Without $NOTIFY_SOCKET, when no manager listens, it does nothing
// and returns nil.
func Notify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	// A name starting with @ is in the abstract namespace, where the Go
	// runtime wants a leading NUL byte instead.
	switch addr[0] {
	case '@':
		addr = "\x00" + addr[1:]
	case '/':
	default:
		return ErrBadSocket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
