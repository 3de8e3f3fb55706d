// Command rpcbind is a drop-in replacement for Debian's rpcbind 1.2.6: the
// RPC program 100000 (portmapper v2, rpcbind v3/v4, RFC 1833) over UDP, TCP
// and the local socket /run/rpcbind.sock.
package main

import (
	"context"
	"os"
)

func main() {
	tuneMemory()
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}
