// Package ifaddr keeps a cached list of the host's interface addresses and
// implements the reference's universal-address merge (rpcbind 1.2.6
// util.c addrmerge, check_bound.c mergeaddr; spec §1.6) on top of it.
//
// The list is refreshed from rtnetlink address and link notifications
// (RFC 3549, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_LINK), or at
// most once a second when netlink is unavailable. It is never read from the
// kernel per request: readers load an immutable snapshot through an
// atomic pointer (DECISIONS "interface list").
//
// Universal addresses are those of RFC 1833 §2 / RFC 5665 §5.2.3.3-4:
// "h1.h2.h3.h4.p1.p2" for IPv4 and "<inet_ntop>.p1.p2" for IPv6.
package ifaddr
