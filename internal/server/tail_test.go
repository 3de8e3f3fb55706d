package server

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// tailHandler answers every call with "head:" + the request and a shared
// tail, as the service does with a cached DUMP body.
type tailHandler struct{ tail []byte }

func (h *tailHandler) ServeRPC(out, req []byte, c *access.Caller) ([]byte, bool) {
	out = append(append(out, "head:"...), req...)
	return append(out, h.tail...), true
}

func (h *tailHandler) ServeRPCTail(out, req []byte, c *access.Caller) ([]byte, []byte, bool) {
	return append(append(out, "head:"...), req...), h.tail, true
}

// A stream reply is the reply then the tail, in one record, even when the
// tail is larger than the socket takes at once (the blocking remainder) and
// when calls are pipelined; the shared tail is never modified.
func TestStreamTailReply(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		for _, size := range []int{0, 100, 4 << 20} {
			tail := bytes.Repeat([]byte("0123456789abcdef"), size/16)
			keep := bytes.Clone(tail)
			s := New(&tailHandler{tail: tail}, Options{StreamEngine: engine, Log: quietLog()})
			t.Cleanup(func() { s.Shutdown(t.Context()) })
			addr := startStream(t, s, "tcp", "127.0.0.1:0")
			c := dial(t, "tcp", addr)
			if _, err := c.Write(append(record("one"), record("two")...)); err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"one", "two"} {
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				var mark [4]byte
				if _, err := io.ReadFull(c, mark[:]); err != nil {
					t.Fatal(err)
				}
				n := binary.BigEndian.Uint32(mark[:])
				if n>>31 != 1 || int(n&(1<<31-1)) != 5+len(m)+len(tail) {
					t.Fatalf("size %d: mark %08x for a %d-byte reply", size, n, 5+len(m)+len(tail))
				}
				b := make([]byte, n&(1<<31-1))
				if _, err := io.ReadFull(c, b); err != nil {
					t.Fatal(err)
				}
				if string(b[:5+len(m)]) != "head:"+m || !bytes.Equal(b[5+len(m):], tail) {
					t.Errorf("size %d, %s: wrong reply", size, m)
				}
			}
			if !bytes.Equal(tail, keep) {
				t.Errorf("size %d: the shared tail was modified", size)
			}
		}
	})
}
