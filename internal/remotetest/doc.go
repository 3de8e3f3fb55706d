// Package remotetest gives a test a "remote host": a second network
// namespace joined to the test's own by a veth pair, with addresses of the
// test's choosing, so that the portmapper (program 100000, RFC 1833) can be
// called the way another machine calls it — from a source address that is
// neither loopback nor local (spec §3.1, DECISIONS.md "local").
//
// It runs inside the private namespaces of internal/nstest (call
// nstest.Enter or e2e.Enter first). New starts a placeholder process in a
// fresh network namespace (clone with CLONE_NEWNET; no /run/netns is
// needed), creates the veth pair, moves one end into that namespace by the
// process's pid and configures both ends:
//
//	r := remotetest.New(t, remotetest.Options{}) // 192.0.2.1/24 here, 192.0.2.2/24 there
//	out, err := r.Command("rpcinfo", "-p", r.Local.String()).CombinedOutput()
//	c := r.DialRPC(t, "udp", "192.0.2.1:111")    // an internal/rpc client on the remote side
//
// Command runs a program in the remote namespace through nsenter(1). Do
// runs Go code there: it locks the goroutine to an OS thread, moves that
// thread into the remote namespace with setns(2), runs the function and
// moves it back; sockets created inside stay in the remote namespace, so a
// client dialled in Do talks from the remote host for its whole life.
//
// The files hardening_test.go (build tag "hardening") hold the issue-6
// scenarios against our daemon; they fail until the lead wires
// internal/hostsaccess and internal/ratelimit into the daemon.
package remotetest
