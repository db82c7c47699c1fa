// Package sdnotify speaks systemd's notification protocol (sd_notify(3))
// without a library: one datagram of newline-separated KEY=VALUE
// assignments to the Unix datagram socket named by $NOTIFY_SOCKET (a name
// starting with @ is in the abstract namespace). Without $NOTIFY_SOCKET
// (not started by systemd with Type=notify) every call does nothing.
package sdnotify

import (
	"net"
	"os"
	"strconv"
	"time"
)

// Messages of the protocol.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Send sends state (e.g. "READY=1\nSTATUS=serving") to the service
// manager. It reports whether a socket was named; an error means the
// datagram could not be sent.
func Send(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return true, err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return true, err
}

// WatchdogInterval is how often to send WATCHDOG=1: half of WATCHDOG_USEC,
// as sd_watchdog_enabled(3) advises, when the watchdog is on and meant for
// this process (WATCHDOG_PID, if set, is our PID); 0 otherwise.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
