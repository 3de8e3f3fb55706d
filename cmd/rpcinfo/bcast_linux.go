package main

import (
	"net"
	"syscall"
)

// setBroadcast sets SO_BROADCAST, without which Linux refuses to send to a
// broadcast address.
func setBroadcast(pc net.PacketConn) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
}
