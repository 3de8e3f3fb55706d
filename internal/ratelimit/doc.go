// Package ratelimit bounds UDP reflection and amplification through the
// portmapper (program 100000, RFC 1833; spec §3.5): a spoofed ~40-byte DUMP
// or GETSTAT call draws a reply up to 225 times larger toward the victim.
//
// [Limiter.Allow] is asked before a UDP reply is sent. Replies that are not
// larger than their request, and replies to local sources (the local socket
// and loopback, DECISIONS.md "non-local"), always pass. The others are
// counted per source prefix in a token bucket (GCRA: one int64 per prefix),
// and in one global bucket that caps the total whatever the number of
// prefixes.
//
// # Chosen limits and why
//
//   - Prefix: IPv4 /24, IPv6 /56 — the defaults of BIND's response-rate
//     limiting, the closest precedent (DNS reflection). A reflection attack
//     aims at one victim or one victim network; counting per /24 stops an
//     attacker from multiplying the budget by spoofing the victim's
//     neighbours, and /56 is a typical IPv6 end-site delegation (a /64 per
//     host would let one site claim 256 budgets).
//   - 20 amplifying replies per second per prefix, burst 100. Honest
//     clients rarely make such calls over UDP: GETPORT/GETADDR replies are
//     smaller than their calls, rpcinfo -p and showmount dump over TCP first,
//     and a host that dumps does so once. 100 in a burst lets a whole /24
//     run a one-shot `rpcinfo -u`-style sweep at once. At the 9000-byte UDP
//     reply cap the ceiling toward one victim network is 20 × 9000 B =
//     1.4 Mbit/s, against an unlimited reflector before.
//   - 2000 per second globally, burst 4000: the total amplified output is
//     at most ~144 Mbit/s even when an attacker spreads spoofed sources over
//     every prefix (which would also churn the table).
//   - Table: 16384 prefixes in 2048 sets of 8 (about 400 KiB, allocated
//     once). A new prefix in a full set replaces the entry seen least
//     recently in that set. The set index is a keyed hash (maphash, random
//     seed), so an attacker cannot aim spoofed prefixes at a victim's set to
//     evict it and get a fresh burst.
//
// Config.RefuseLists goes further (off by default): UDP DUMP (v2, v3, v4)
// and GETSTAT calls from non-local sources are refused outright —
// [Limiter.RefuseUDP] tells the transport, which answers AUTH_TOOWEAK (a
// 24-byte reply to a 40-byte call: no amplification) — so that the table
// can only be listed over TCP, which rpcinfo and pmap_getmaps try first.
package ratelimit
