// Package access holds the pure rules that decide who may do what to the
// portmapper (program 100000, RFC 1833): which callers count as local, the
// owner string a registration is recorded under, who may SET and UNSET, and
// which programs CALLIT/INDIRECT may not forward to.
//
// The rules replicate Debian's rpcbind 1.2.6 (security.c check_access,
// is_loopback, is_localroot, check_callit; rpcb_svc_com.c getowner;
// pmap_svc.c pmapproc_change) as described in the reference spec §1.7, §3.1
// and §3.2, with the choices recorded in DECISIONS.md ("local" caller, owner
// strings, "non-local" source). Nothing here does I/O; the transports fill in
// a Caller and the service asks these functions.
package access
