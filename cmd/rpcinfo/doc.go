// Command rpcinfo reports RPC information, as Debian's rpcinfo from rpcbind
// 1.2.6 does, byte for byte: it dumps the registrations of an rpcbind or
// portmapper (RFC 1833 program 100000 versions 2, 3 and 4), pings RPC
// services with NULL calls (RFC 5531), shows rpcbind's statistics, deletes
// registrations and broadcasts.
//
// Every reply is decoded with the capped decoders of package pmap: lists
// stop at a named limit, no allocation is sized from the wire, and a
// hostile reply (huge counts, truncated lists, wrong XIDs) ends in a clear
// libtirpc-style error such as "RPC: Can't decode result" — never in the
// stack overflows of the C rpcinfo's -l and -s modes (CVE-2026-16277,
// CVE-2026-16461).
package main
