// Command rpcreg registers test entries with the rpcbind on this machine,
// for the container test (internal/nspawntest): the container has no
// compiler, so the host builds this and copies it in.
//
// Usage: rpcreg N. It registers programs 536870912..536870912+N-1 (the
// user-defined range 0x20000000), version 1, on netids tcp and udp with
// rpcbind v3 SET over /run/rpcbind.sock (owner superuser, as a root NFS
// daemon would), so that rpcinfo shows 2N entries. N is at most 64; each
// call is bounded by a 5 s timeout.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

const (
	firstProg = 536870912 // 0x20000000: user-defined programs
	maxN      = 64
	rpcbSet   = 1 // RPCBPROC_SET
)

func main() {
	n, err := strconv.Atoi(argOr(1, ""))
	if err != nil || n < 1 || n > maxN {
		fmt.Fprintf(os.Stderr, "usage: rpcreg N (1..%d)\n", maxN)
		os.Exit(2)
	}
	c, err := rpc.Dial("unix", "/run/rpcbind.sock", rpc.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(os.Stderr, "rpcreg: dial: %v\n", err)
		os.Exit(1)
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		prog := uint32(firstProg + i)
		for _, netid := range []string{"tcp", "udp"} {
			port := 40000 + i
			addr := fmt.Sprintf("0.0.0.0.%d.%d", port>>8, port&255)
			args := pmap.AppendRPCB(nil, prog, 1, netid, addr, "superuser")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := c.Call(ctx, pmap.Prog, 3, rpcbSet, nil, args)
			cancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "rpcreg: SET %d %s: %v\n", prog, netid, err)
				os.Exit(1)
			}
			d := xdr.NewDecoder(res)
			if ok := d.Uint32(); d.Err() != nil || ok != 1 {
				fmt.Fprintf(os.Stderr, "rpcreg: SET %d %s refused\n", prog, netid)
				os.Exit(1)
			}
		}
	}
	fmt.Printf("rpcreg: registered %d entries\n", 2*n)
}

func argOr(i int, def string) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return def
}
