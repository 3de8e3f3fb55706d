// Package warmstart keeps the registration table across daemon restarts.
//
// Two formats live in the state directory (Debian: /run/rpcbind):
//
//   - rpcbind.xdr and portmap.xdr, byte-compatible with the C rpcbind 1.2.6
//     warm-start files: rpcbind.xdr is the XDR rpcblist_ptr (RFC 1833 §2.2,
//     the v3/v4 DUMP result body: repeated {bool more=1; rpcb} then 0),
//     portmap.xdr the XDR pmaplist (RFC 1833 §3.1, the v2 DUMP body). Both
//     use RFC 4506 encoding. They are written atomically (temporary file,
//     fsync, rename, fsync of the directory), mode 0600.
//
//   - rpcbind.journal, our addition: an append-only log of SET/UNSET records
//     made durable (fdatasync) before a change is acknowledged, so that a
//     registration survives kill -9. On tmpfs or ramfs (Debian's /run),
//     where fdatasync does nothing, the write alone is that step (one raw
//     pwrite per change, see onMemoryFS). Layout, all integers big-endian:
//
//     header  "RPCBJNL2" | u32 base kind | u32 base length | u32 base CRC |
//     u64 base st_dev | u64 base st_ino | u64 base ctime s | u32 base ctime ns | u32 header CRC
//     record  u32 payload length | u32 CRC | payload
//     payload u32 op (1 SET, 2 UNSET) | rpcb{u32 prog, u32 vers, string netid, string addr, string owner}
//
//     CRCs are CRC-32C (Castagnoli); a record's CRC covers its length word
//     and payload. The header names the C-format file the journal applies
//     to (base kind 1 = rpcbind.xdr, 2 = portmap.xdr, 0 = none): its bytes
//     (length, CRC) and the write that left them (device, inode and ctime
//     as fstat saw them after our rename, or when we read a file someone
//     else wrote). A journal is replayed only over that very file: one left
//     behind by a kill -9 is voided — with a logged line giving the reason
//     and the number of records discarded — when another daemon (e.g. a
//     rolled-back C rpcbind, which unlinks what it read and creates a new
//     file at exit, or truncates it in place without -w) rewrote the base
//     since, even with identical bytes. A journal of the first layout
//     ("RPCBJNL1", 24-byte header without the identity) is voided too.
//     Replay stops at the first torn or corrupt record.
//
// Recovery loads rpcbind.xdr (the master; portmap.xdr only when rpcbind.xdr
// is absent or undecodable), replays the journal, and drops program 100000,
// as the reference's read_warmstart does. Unlike the reference, good files
// are not unlinked after reading: they stay the base the journal applies to,
// so a crash right after start loses nothing. Undecodable files are unlinked,
// as the reference does. Compaction rewrites the C files from the full table
// and starts an empty journal, so a roll-back to the C daemon finds current
// files after every clean exit.
package warmstart
