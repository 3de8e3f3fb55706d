// Package service dispatches ONC RPC program 100000 (RFC 1833: portmapper
// version 2, rpcbind versions 3 and 4; call and reply framing of RFC 5531)
// with the exact behaviour of Debian's rpcbind 1.2.6 (spec §1), except for
// the improvements DECISIONS.md and spec §10 list: an rpcvers other than 2 is
// answered RPC_MISMATCH, arguments are decoded within the message (truncated
// UDP arguments get GARBAGE_ARGS), UNSET is all or nothing, GETADDRLIST skips
// entries with an unknown netid instead of going silent, and the GETSTAT lists
// are capped.
//
// ServeRPC is transport-neutral: it takes one call message and the caller's
// description and appends at most one reply. The UDP path for GETPORT and
// GETADDR does not allocate.
package service
