// Package e2e holds the end-to-end tests: the daemon under test and Debian's
// reference rpcbind 1.2.6 are driven by real peers — the real rpcinfo, the
// real libtirpc client calls (testdata/c/tirpcclient.c), rpc.statd — inside
// private network and mount namespaces (internal/nstest), and their answers
// are compared side by side (RFC 1833 program 100000 v2/v3/v4 as spoken by
// the reference; spec §6).
//
// A test starts with Enter, which builds the binaries once per test binary,
// then re-runs the test inside the namespaces:
//
//	func TestX(t *testing.T) {
//		env, ok := e2e.Enter(t)
//		if !ok {
//			return
//		}
//		env.Compare(t, "rpcinfo -p", "tirpcclient set 300000 1 tcp 0.0.0.0.3.232")
//	}
//
// Compare starts each implementation in turn on a fresh /run, runs the same
// script of commands, and fails when any command's stdout, stderr or exit
// status, the daemon's exit status after SIGTERM or its warm-start files
// differ from the reference's.
//
// The daemon under test is $RPCBIND_BIN when set, else ./cmd/rpcbind built
// with `go build` (with -race when the tests are); when cmd/rpcbind does not
// exist yet only the reference runs.
package e2e
