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
