// Package registry is rpcbind's registration table: the (program, version,
// netid) → universal address map served by portmapper v2 and rpcbind v3/v4
// (RFC 1833), with the reference's exact semantics (Debian rpcbind 1.2.6,
// rpcb_svc_com.c map_set/map_unset/find_service, pmap_svc.c; spec §1.3–§1.5,
// §2.4).
//
// There is one master list of entries in registration order; v3/v4 DUMP
// serves it as is. The v2 view (v2 DUMP, GETPORT) is derived from it, never
// kept separately (DECISIONS "the v2 view"): the entries whose netid is
// exactly "tcp" or "udp" and whose uaddr yields a port by rpcbind's
// uaddr2port.
//
// Lookups are O(1) through indexes kept beside the list: (netid folded to
// lower case, prog) → versions, (prog, vers) → entries, (prog, protocol) →
// v2 versions. Every index keeps its entries in master order, so the
// reference's "exact version, else the last entry of the program" rule is a
// map lookup or the tail of a chain. Updates cost O(1) per entry touched.
// The DUMP result bodies are encoded once and cached until the next change.
package registry
