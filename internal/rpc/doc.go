// Package rpc implements the parts of ONC RPC version 2 (RFC 5531) that the
// portmapper needs: the call header, AUTH_NONE and AUTH_SYS credentials,
// reply builders, reply parsing, record marking for stream transports
// (RFC 5531 §11) and a small client.
//
// Parsing never panics on network input and never sizes an allocation from
// the wire: every declared length is checked against a named limit
// (MaxAuthBytes, MaxMachineName, MaxGIDs, the record cap given to
// NewRecordReader) and against the bytes that remain. ParseCall and the reply
// builders do not allocate; slices they return alias the message.
//
// Where the reference (libtirpc 1.3.3 under rpcbind 1.2.6) deviates from the
// RFC, the package follows the team decisions: a call with rpcvers ≠ 2 is
// reported as ErrRPCVersion so that the server can answer RPC_MISMATCH
// (the reference drops it silently), and multi-fragment records are
// reassembled (the reference breaks on them).
package rpc
