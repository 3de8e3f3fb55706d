// Issue-6 per-source connection cap (--max-conns-per-source, default
// guard.DefaultMaxConnsPerSource) seen from a remote host.

package remotetest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/guard"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// capExtra is how many connections beyond the cap the remote host opens.
const capExtra = 16

// capPrompt bounds how long a refused connection may stay open: the
// daemon resets it at accept, so only a broken cap comes near it.
const capPrompt = 5 * time.Second

// nullRecord is a v2 NULL call in one stream record.
func nullRecord(xid uint32) []byte {
	b, start := rpc.BeginRecord(nil)
	b = rpc.AppendCall(b, xid, pmap.Prog, 2, 0, nil)
	rpc.EndRecord(b, start)
	return b
}

// refused sends a NULL over c and reports how the daemon ended the
// connection: nil when it was reset or closed without an answer within
// capPrompt, else what happened instead.
func refused(c net.Conn) error {
	c.SetDeadline(time.Now().Add(capPrompt))
	if _, err := c.Write(nullRecord(7)); err != nil {
		return nil // the RST arrived first: EPIPE or ECONNRESET
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	var ne net.Error
	switch {
	case n > 0:
		return errors.New("answered")
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("still open after " + capPrompt.String())
	case err == nil:
		return errors.New("read returned nothing and no error")
	}
	return nil // io.EOF or ECONNRESET
}

// TestPerSourceConnCap: the remote host holds DefaultMaxConnsPerSource
// TCP connections to the daemon (each proven accepted by an answered NULL);
// the next capExtra connections from the same address are reset at once
// while the held ones still work; a local client (127.0.0.1) still
// connects and gets GETPORT answered; the remote host's other address
// (IPv6) is a different source and is served; closing one held connection
// gives its slot back. Ours only: the reference has no per-source cap.
func TestPerSourceConnCap(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	env.Start(t, ours(t, env))
	const max = guard.DefaultMaxConnsPerSource

	held := make([]*rpc.Client, max)
	for i := range held {
		held[i] = r.DialRPC(t, "tcp", "192.0.2.1:111", quick)
		if got := null(t, held[i]); got != "ok" {
			t.Fatalf("remote connection %d of %d: NULL %s", i+1, max, got)
		}
	}

	resets := 0
	start := time.Now()
	for i := 0; i < capExtra; i++ {
		var c net.Conn
		err := r.Do(func() (err error) {
			c, err = net.Dial("tcp", "192.0.2.1:111")
			return err
		})
		switch {
		case errors.Is(err, syscall.ECONNRESET):
			// The kernel completed the handshake and the daemon's RST
			// (at accept) arrived before the dial returned.
			err = nil
		case err != nil:
			t.Fatalf("extra connection %d: dial: %v", i+1, err)
		default:
			err = refused(c)
			c.Close()
		}
		if err != nil {
			t.Errorf("connection %d from 192.0.2.2 (cap %d): %v, want a reset", max+i+1, max, err)
			continue
		}
		resets++
	}
	t.Logf("%d connections over the cap of %d from 192.0.2.2: %d reset or closed unanswered in %v",
		capExtra, max, resets, time.Since(start).Round(time.Millisecond))

	// The held connections were not touched by the refusals.
	for i, c := range held {
		if got := null(t, c); got != "ok" {
			t.Errorf("held connection %d after the refusals: NULL %s", i+1, got)
		}
	}
	// Local callers are never counted.
	lc, err := rpc.Dial("tcp", "127.0.0.1:111", quick)
	if err != nil {
		t.Fatalf("local client while the remote source is at its cap: %v", err)
	}
	defer lc.Close()
	if got := getport(t, lc); got != "port 111" {
		t.Errorf("local GETPORT while the remote source is at its cap: %s, want port 111", got)
	}
	// The cap is per address: the remote host's IPv6 address is served.
	if got := null(t, r.DialRPC(t, "tcp6", "[2001:db8::1]:111", quick)); got != "ok" {
		t.Errorf("remote host's other address (2001:db8::2) while 192.0.2.2 is capped: NULL %s", got)
	}

	// Closing a held connection frees its slot once the daemon sees the EOF.
	held[0].Close()
	until(t, capPrompt, "a slot freed by a closed connection", func() bool {
		var c net.Conn
		if err := r.Do(func() (err error) {
			c, err = net.Dial("tcp", "192.0.2.1:111")
			return err
		}); err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(capPrompt))
		if _, err := c.Write(nullRecord(9)); err != nil {
			return false
		}
		n, err := c.Read(make([]byte, 512))
		return n > 0 && err == nil
	})
}
