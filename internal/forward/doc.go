// Package forward relays rpcbind's remote calls (RFC 1833 §2.2.1 CALLIT and
// BCAST, §2.2.2 INDIRECT; portmapper CALLIT, §3.2) to the registered service
// and sends its answer back to the original caller, as the reference does with
// -r (rpcbind 1.2.6 rpcb_svc_com.c forward_register, handle_reply; spec §1.7).
//
// Calls leave from a UDP socket per address family bound to the loopback
// address on an ephemeral port (127.0.0.1:0, [::1]:0), opened on first use, so
// -r adds no wildcard listening port (spec §8). The 64 in-flight slots, the
// forwarded-XID scheme (time*64 stepping by 64, slot in the low bits), the
// 300 s expiry and duplicate suppression are the reference's.
package forward
