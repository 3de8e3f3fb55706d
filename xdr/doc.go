// Package xdr is the hot-path codec for RFC 4506 External Data Representation.
//
// Encoding appends into caller-owned buffers (AppendUint32, AppendOpaque,
// AppendString, ...), so a reply is built in one reused buffer and written
// with one system call. Decoding goes through a sticky-error Decoder over one
// message: read the fields in the order of the XDR definition and check Err
// once at the end.
//
// Every variable-length item is checked against a caller-named maximum and
// against the bytes that remain before anything is read or allocated; the
// Decoder itself never allocates on success. Opaque and StringBytes return
// slices that alias the message.
//
// Leniency policy, decided once here to match libtirpc 1.3.3 (the reference's
// xdr_bool, xdr_opaque and svc_getargs):
//   - a bool is any 32-bit word; zero is FALSE and every other value is TRUE
//     (libtirpc: "*bp = (lb == XDR_FALSE) ? FALSE : TRUE");
//   - the content of padding bytes is ignored (libtirpc reads them into a
//     scratch buffer and never looks at them);
//   - trailing bytes after the last field are not an error for Err; Finish
//     reports them for callers that want exact framing (libtirpc's
//     svc_getargs never checks for them, so RPC argument decoding uses Err).
//
// The package uses only the standard library, and neither reflect nor fmt.
package xdr
