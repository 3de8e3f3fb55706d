// Package nstest runs a test inside private network and mount namespaces so
// that it can own port 111 and /run/rpcbind.sock without touching the host's
// rpcbind.
//
// A test calls [Enter] first. Outside the namespaces, Enter re-executes the
// test binary under CLONE_NEWNET|CLONE_NEWNS, running only that test, streams
// the child's output into the test log and reports false; the caller returns.
// Inside, Enter has made every mount private, brought lo up (127.0.0.0/8 and
// ::1) and mounted a tmpfs on /run (with /run/rpcbind owned by _rpc, as
// Debian's tmpfiles.d does), and reports true; the test body runs there.
//
//	func TestSomething(t *testing.T) {
//		if !nstest.Enter(t) {
//			return
//		}
//		d := nstest.StartDaemon(t, nstest.ReferenceRpcbind(t), "-f", "-w")
//		...
//	}
//
// Namespaces need root: Enter fails the test when the effective uid is not 0
// (skips it in a reduced run, see internal/testenv).
// Only loopback traffic is possible inside: the namespace has no other link.
package nstest
