package daemon

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked means another rpcbind holds the lock; its text is the reference's.
var ErrLocked = errors.New("another rpcbind is already running. Aborting")

// Lock opens path (created read-only, 0444, as the reference) and takes an
// exclusive flock without waiting. The lock lasts as long as the file stays
// open; it is released by the kernel when the process dies, so a stale file
// never blocks a start.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		// err(1, "%s", path) in the reference: "rpcbind: PATH: Strerror".
		var errno unix.Errno
		if errors.As(err, &errno) {
			msg := errno.Error()
			return nil, fmt.Errorf("%s: %s", path, strings.ToUpper(msg[:1])+msg[1:])
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return f, nil
}
