// Command rpcbind is a drop-in replacement for Debian's rpcbind 1.2.6: the
// RPC program 100000 (portmapper v2, rpcbind v3/v4, RFC 1833) over UDP, TCP
// and the local socket /run/rpcbind.sock.
//
// GOMAXPROCS: the daemon runs with the CPUs the Go runtime would use plus
// one per UDP reader and stream event loop, the goroutines that wait in
// blocking system calls holding a P (procs.go), so that accepts and timers
// never wait for the runtime to take a P back from them. A GOMAXPROCS
// environment variable, when set, is used as it is.
package main

import (
	"context"
	"os"
)

func main() {
	tuneMemory()
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}
