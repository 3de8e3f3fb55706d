package rpc

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// Client defaults.
const (
	// DefaultTimeout bounds a call when ClientOptions.Timeout is zero; it is
	// libtirpc's usual total timeout (rpcinfo, clnt_create users: 25 s).
	DefaultTimeout = 25 * time.Second
	// DefaultRetransmit is the UDP resend interval when
	// ClientOptions.Retransmit is zero.
	DefaultRetransmit = time.Second
	// DefaultMaxReply caps a reply record on stream transports when
	// ClientOptions.MaxReply is zero. Replies can be much larger than
	// requests (a DUMP of a big table is fragmented by the server).
	DefaultMaxReply = 1 << 20
	// maxDatagram is the largest UDP payload.
	maxDatagram = 65535
)

// ClientOptions tune a Client. Zero values mean the defaults above.
type ClientOptions struct {
	Timeout    time.Duration // per call, unless the context ends earlier
	Retransmit time.Duration // UDP: interval between resends of the same call
	LocalAddr  string        // optional local address, e.g. "127.0.0.1:700"
	MaxReply   int           // streams: largest reply record accepted
}

var (
	// ErrTimeout is returned when ClientOptions.Timeout passes without a
	// matching reply. errors.Is(ErrTimeout, context.DeadlineExceeded) and
	// errors.Is(ErrTimeout, os.ErrDeadlineExceeded) hold.
	ErrTimeout error = timeoutError{}
	// ErrConnBroken is returned by every call on a stream client after a
	// call failed mid-stream (a timeout or a framing error): the position
	// in the record stream is lost. Dial again.
	ErrConnBroken = errors.New("rpc: stream connection unusable after an earlier error")
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "rpc: call timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}

// Client makes ONC RPC calls over one connection: UDP (with retransmission,
// ignoring datagrams whose XID is not the call's), or TCP / unix stream
// sockets with record marking. Calls are serialised; a Client is safe for
// concurrent use.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	stream bool
	opt    ClientOptions
	xid    uint32
	out    []byte
	in     []byte // UDP receive buffer
	rr     *RecordReader
	err    error // sticky, streams only
}

// Dial connects to addr on network "udp", "udp4", "udp6", "tcp", "tcp4",
// "tcp6" (host:port) or "unix" (a socket path).
func Dial(network, addr string, opt ClientOptions) (*Client, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Retransmit <= 0 {
		opt.Retransmit = DefaultRetransmit
	}
	if opt.MaxReply <= 0 {
		opt.MaxReply = DefaultMaxReply
	}
	d := net.Dialer{Timeout: opt.Timeout}
	var stream bool
	var err error
	switch network {
	case "udp", "udp4", "udp6":
		if opt.LocalAddr != "" {
			d.LocalAddr, err = net.ResolveUDPAddr(network, opt.LocalAddr)
		}
	case "tcp", "tcp4", "tcp6":
		stream = true
		if opt.LocalAddr != "" {
			d.LocalAddr, err = net.ResolveTCPAddr(network, opt.LocalAddr)
		}
	case "unix":
		stream = true
		if opt.LocalAddr != "" {
			d.LocalAddr = &net.UnixAddr{Name: opt.LocalAddr, Net: "unix"}
		}
	default:
		return nil, errors.New("rpc: dial: unsupported network " + network)
	}
	if err != nil {
		return nil, errors.Join(errors.New("rpc: dial: local address"), err)
	}
	conn, err := d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, stream: stream, opt: opt, xid: rand.Uint32()}
	if stream {
		c.rr = NewRecordReader(conn, opt.MaxReply)
	} else {
		c.in = make([]byte, maxDatagram)
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// LocalAddr returns the local address of the connection.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Call sends a call of prog/vers/proc with the given credential (nil means
// AUTH_NONE) and XDR-encoded args, and returns a copy of the results of a
// SUCCESS reply. A reply that is not SUCCESS is a *ReplyError.
func (c *Client) Call(ctx context.Context, prog, vers, proc uint32, cred *OpaqueAuth, args []byte) ([]byte, error) {
	return c.CallAppend(ctx, nil, prog, vers, proc, cred, args)
}

// CallAppend is Call that appends the results to dst, so that a caller
// reusing dst makes calls without allocating.
func (c *Client) CallAppend(ctx context.Context, dst []byte, prog, vers, proc uint32, cred *OpaqueAuth, args []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return dst, c.err
	}
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	c.xid++
	xid := c.xid
	deadline := time.Now().Add(c.opt.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Cancelling the context unblocks a pending read or write. Every
	// later deadline change is followed by a ctx.Err check, so a
	// cancellation is never overwritten unnoticed.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if c.stream {
		return c.callStream(ctx, dst, xid, deadline, prog, vers, proc, cred, args)
	}
	return c.callDatagram(ctx, dst, xid, deadline, prog, vers, proc, cred, args)
}

// fail turns a deadline error into the context's error or ErrTimeout.
func (c *Client) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrTimeout
	}
	return err
}

func (c *Client) callDatagram(ctx context.Context, dst []byte, xid uint32, deadline time.Time, prog, vers, proc uint32, cred *OpaqueAuth, args []byte) ([]byte, error) {
	c.out = AppendCall(c.out[:0], xid, prog, vers, proc, cred)
	c.out = append(c.out, args...)
	for {
		c.conn.SetWriteDeadline(deadline)
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		if _, err := c.conn.Write(c.out); err != nil {
			return dst, c.fail(ctx, err)
		}
		wait := time.Now().Add(c.opt.Retransmit)
		if wait.After(deadline) {
			wait = deadline
		}
		c.conn.SetReadDeadline(wait)
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		for {
			n, err := c.conn.Read(c.in)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil && time.Now().Before(deadline) {
					break // resend the same call, same XID
				}
				return dst, c.fail(ctx, err)
			}
			res, err := ParseReply(c.in[:n], xid)
			switch err {
			case ErrXIDMismatch, ErrNotReply:
				continue // a stale or foreign datagram
			case ErrShortReply:
				if n < 4 || uint32(c.in[0])<<24|uint32(c.in[1])<<16|uint32(c.in[2])<<8|uint32(c.in[3]) != xid {
					continue
				}
			}
			if err != nil {
				return dst, err
			}
			return append(dst, res...), nil
		}
	}
}

func (c *Client) callStream(ctx context.Context, dst []byte, xid uint32, deadline time.Time, prog, vers, proc uint32, cred *OpaqueAuth, args []byte) ([]byte, error) {
	b, start := BeginRecord(c.out[:0])
	b = AppendCall(b, xid, prog, vers, proc, cred)
	b = append(b, args...)
	EndRecord(b, start)
	c.out = b
	c.conn.SetDeadline(deadline)
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	if _, err := c.conn.Write(c.out); err != nil {
		c.err = ErrConnBroken
		return dst, c.fail(ctx, err)
	}
	for {
		rec, err := c.rr.Next()
		if err != nil {
			c.err = ErrConnBroken
			return dst, c.fail(ctx, err)
		}
		res, err := ParseReply(rec, xid)
		if err == ErrXIDMismatch {
			continue // the late reply to an earlier call
		}
		if err != nil {
			return dst, err
		}
		return append(dst, res...), nil
	}
}
