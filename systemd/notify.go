package systemd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify(3) state changes. Every method is a no-op
// returning (false, nil) when NOTIFY_SOCKET is unset, i.e. outside systemd.
// The zero value is ready to use; methods are safe for concurrent use.
//
// Each method returns daemon.SdNotify's three-way result: (false, nil) not
// under systemd, (false, err) the send failed, (true, nil) sent.
type Notifier struct{}

// NewNotifier returns a Notifier. NOTIFY_SOCKET is read at each send and
// left in the environment, since a daemon notifies more than once.
func NewNotifier() *Notifier { return &Notifier{} }

// Enabled reports whether the process runs under a service manager that
// listens for notifications.
func (n *Notifier) Enabled() bool {
	return os.Getenv("NOTIFY_SOCKET") != ""
}

// Ready sends READY=1, with STATUS=status in the same datagram when status
// is not empty. Send it only once every listener serves (Type=notify).
func (n *Notifier) Ready(status string) (bool, error) {
	if status == "" {
		return n.send(daemon.SdNotifyReady)
	}
	return n.send(daemon.SdNotifyReady + "\nSTATUS=" + oneLine(status))
}

// Status sends STATUS=s, shown by systemctl status (e.g. a degraded
// persistence state).
func (n *Notifier) Status(s string) (bool, error) {
	return n.send("STATUS=" + oneLine(s))
}

// Stopping sends STOPPING=1 at the start of shutdown.
func (n *Notifier) Stopping() (bool, error) {
	return n.send(daemon.SdNotifyStopping)
}

// WatchdogInterval returns how often Watchdog pings: half of WATCHDOG_USEC,
// or 0 when systemd set no watchdog for this process (WatchdogSec= unset,
// or WATCHDOG_PID names another process).
func (n *Notifier) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// Watchdog sends WATCHDOG=1 every WatchdogInterval until ctx is done, then
// returns nil. healthy (nil means always) gates each ping: a wedged server
// stops pinging and systemd restarts it. Without a watchdog it returns nil
// at once. A failed send is returned.
func (n *Notifier) Watchdog(ctx context.Context, healthy func() bool) error {
	every := n.WatchdogInterval()
	if every <= 0 {
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if healthy == nil || healthy() {
			if _, err := n.send(daemon.SdNotifyWatchdog); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (n *Notifier) send(state string) (bool, error) {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		key, _, _ := strings.Cut(state, "=")
		return false, fmt.Errorf("systemd: notify %s: %w", key, err)
	}
	return sent, nil
}

// oneLine keeps a STATUS value from injecting further assignments.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
