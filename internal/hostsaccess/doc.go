// Package hostsaccess decides, as Debian's libwrap (tcp_wrappers 7.6.q,
// hosts_access(5) and hosts_options(5)) does for the daemon name "rpcbind",
// whether a client address may use the portmapper (program 100000,
// RFC 1833): /etc/hosts.allow is searched first and its first matching rule
// grants; then /etc/hosts.deny, whose first matching rule denies; otherwise
// access is granted. A missing file is an empty one.
//
// The reference consults libwrap for every non-AF_UNIX request (spec §3.1)
// and re-reads both files each time, which costs it most of its CPU. Here the
// files are parsed once into a snapshot held by an atomic pointer; a request
// only loads the pointer and, at most once a second, one request stats both
// files and re-parses them when their inode, size, mtime or ctime changed.
// [Checker.Allowed] allocates nothing.
//
// # What is matched
//
// The client is an address only: no name is ever resolved (DECISIONS.md).
// The patterns are evaluated as libwrap evaluates them for a client whose
// name does not resolve, with these rules measured against the installed
// libwrap0 7.6.q-32 (see oracle_test.go):
//
//   - daemon lists: "rpcbind" (any case), ALL, KNOWN, wildcards ("rpc*"),
//     EXCEPT. daemon@host is evaluated as libwrap does for rpcbind, which
//     passes no server address: the host part matches only ALL, UNKNOWN or a
//     wildcard matching "unknown".
//   - client lists: ALL, EXCEPT (nested: a EXCEPT b EXCEPT c is
//     a EXCEPT (b EXCEPT c)), numeric IPv4 addresses, "a.b.c." prefixes,
//     n.n.n.n/m.m.m.m (match when address AND mask == net, so a net with host
//     bits set never matches and 255.255.255.255 is not a valid mask, as in
//     libwrap), n.n.n.n/len (1..32), [v6], [v6]/len (both sides masked),
//     '*' and '?' wildcards against the numeric address text (case
//     sensitive, as match_pattern_ylo). user@host: the user is "unknown"
//     (rpcbind never does IDENT), so the user part matches only ALL,
//     UNKNOWN or a wildcard matching "unknown".
//   - IPv4-mapped IPv6 callers are matched as IPv4 (libwrap strips
//     "::ffff:"); IPv6 patterns never match IPv4 callers and IPv4 patterns
//     never match IPv6 ones. Zones are ignored.
//   - LOCAL (libwrap: "a host name without a dot"). Decision: LOCAL matches
//     loopback addresses (127.0.0.0/8, ::1), which Debian's /etc/hosts names
//     "localhost", and nothing else; a remote host that libwrap would find
//     under a dotless name does not match.
//   - Not supported, logged once, never match: host names and domain
//     suffixes (".example.com"), @netgroups, /file patterns, KNOWN, UNKNOWN
//     and PARANOID as client patterns (they depend on name resolution), and
//     numeric-looking tokens that are not canonical addresses.
//
// Options after a second ':' follow hosts_options(5), as Debian builds
// libwrap with PROCESS_OPTIONS: a final "allow" or "deny" decides the
// verdict of the matching rule whatever file it is in; an unknown option, an
// empty one, allow/deny before the end, or a missing or unexpected value
// denies (libwrap's tcpd_jump). Valid options that run commands or change
// the process (spawn, twist, aclexec, user, group, umask, setenv, banners,
// nice, linger, keepalive, rfc931, severity) are ignored and logged once:
// rpcbind never runs a command on a client's behalf.
//
// File syntax: a '#' in column 1 starts a comment (elsewhere it is a token,
// as in libwrap); a backslash before the newline joins lines (with nothing
// in between); ':' inside [ ] does not split fields; a last line without a
// newline still counts; a logical line over 2047 bytes is skipped (libwrap's
// buffer). An unreadable hosts.allow is ignored and an unreadable hosts.deny
// denies everyone not granted by hosts.allow, as libwrap.
package hostsaccess
