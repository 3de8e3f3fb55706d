package ifaddr

import (
	"os"

	"golang.org/x/sys/unix"
)

// watch subscribes to rtnetlink address and link notifications and refreshes
// the snapshot after each batch. Any message (and ENOBUFS, which means some
// were lost) triggers a full re-read; the content is not parsed.
func (c *Cache) watch() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	sa := &unix.SockaddrNetlink{
		Family: unix.AF_NETLINK,
		Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_LINK,
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return err
	}
	// A non-blocking fd in an *os.File goes through the runtime poller, so
	// Close wakes a blocked Read.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	c.closer = f.Close
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 16<<10)
		for {
			_, err := f.Read(buf)
			select {
			case <-c.done:
				return
			default:
			}
			if err != nil && err != unix.ENOBUFS && !isENOBUFS(err) {
				// The socket is unusable: fall back to polling.
				c.wg.Add(1)
				go c.poll()
				return
			}
			_ = c.Refresh()
		}
	}()
	return nil
}

func isENOBUFS(err error) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == unix.ENOBUFS
}
