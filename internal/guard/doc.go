// Package guard is the daemon's policy layer in front of the program-100000
// dispatcher (internal/service): a server.Handler decorator that applies the
// hardening of issue 6 without the transports or the dispatcher knowing.
//
//   - UDP amplification control (RFC 1833 over UDP is a classic reflector):
//     with ratelimit.Config.RefuseLists, UDP DUMP/GETSTAT calls from non-local
//     sources are answered AUTH_TOOWEAK (RFC 5531 §9) without dispatch; any
//     UDP reply larger than its call to a non-local source passes the
//     per-prefix token bucket of internal/ratelimit or is dropped silently.
//   - Registrations per owner: a SET that would add an entry for a
//     non-superuser owner that already holds MaxPerOwner entries is answered
//     FALSE, as any refused SET (RFC 1833 §2.2.1 "returns TRUE on success").
//   - CHECK_PORT (option): a SET of a port below 1024 by a caller that is not
//     superuser is answered FALSE, as portmap 6.0's check_setunset →
//     check_privileged_port (ans = 0, logged "request from unprivileged port").
//   - Pruning (option, prune.go): dead registrations are removed through the
//     table's normal UNSET path, so the journal records them.
//
// Local callers (the local socket and loopback sources, DECISIONS
// "non-local") are never rate-limited; superuser is never capped.
package guard
