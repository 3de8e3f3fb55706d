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
