package remotetest

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }

// TestReferenceFromRemote proves the harness against Debian's rpcbind: from
// the remote host rpcinfo -p works, and SET is refused with AUTH_TOOWEAK
// (spec §3.1: "remote: AUTH_TOOWEAK unless -i").
func TestReferenceFromRemote(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	r := New(t, dualStack())
	d := nstest.StartDaemon(t, nstest.ReferenceRpcbind(t), "-f", "-w")
	_ = d

	out, err := r.Command(nstest.Need(t, "rpcinfo"), "-p", r.Local.String()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "100000    2   tcp    111  portmapper") {
		t.Fatalf("rpcinfo -p %s from the remote host: %v\n%s", r.Local, err, out)
	}

	c := r.DialRPC(t, "udp", r.Local.String()+":111", quick)
	if src := c.LocalAddr().String(); !strings.HasPrefix(src, r.Remote.String()+":") {
		t.Fatalf("the remote client's source is %s, want %s", src, r.Remote)
	}
	_, err = c.Call(ctx(t), 100000, 2, 1, nil, mapping(300001, 1, 17, 4000))
	var re *rpc.ReplyError
	if !errors.As(err, &re) || re.Stat != rpc.MsgDenied || re.RejectStat != rpc.AuthError || re.AuthStat != rpc.AuthTooWeak {
		t.Fatalf("v2 SET over UDP from the remote host: %v, want MSG_DENIED/AUTH_ERROR/AUTH_TOOWEAK", err)
	}
	// The same call from loopback is accepted: the refusal is about the source.
	local, err := rpc.Dial("udp", "127.0.0.1:111", quick)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if got := set(t, local, 2, 300001, "udp", ""); got != "TRUE" {
		t.Fatalf("v2 SET from 127.0.0.1: %s, want TRUE", got)
	}
	// Go code in the remote namespace sees its own address, not ours.
	if err := r.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/if_inet6")
		if err == nil && !strings.Contains(string(b), "20010db8000000000000000000000002") {
			return errors.New("remote namespace lacks 2001:db8::2")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
