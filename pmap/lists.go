package pmap

import (
	"github.com/openrpcbind/rpcbind/xdr"
)

// List limits for the client-side decoders. The lists are XDR optional-data
// linked lists (RFC 4506 §4.19): no count precedes them, so the decoders
// append as they go and stop with ErrListTooLong at these limits. Every
// entry also consumes at least 20 bytes of the reply, so memory stays
// proportional to what was received.
const (
	MaxDumpV2Len    = 1 << 16 // pmap entries in a v2 DUMP result
	MaxDumpV3Len    = 1 << 16 // rpcb entries in a v3/v4 DUMP result
	MaxEntryListLen = 1 << 16 // rpcb_entry elements in a GETADDRLIST result
	MaxStatListLen  = 1 << 16 // addrinfo or rmtinfo elements per version in GETSTAT
)

// AppendDumpV2 appends ms as a pmaplist (RFC 1833 §3.2, PMAPPROC_DUMP).
func AppendDumpV2(b []byte, ms []Mapping) []byte {
	for i := range ms {
		b = xdr.AppendBool(b, true)
		b = ms[i].AppendXDR(b)
	}
	return xdr.AppendBool(b, false)
}

// DecodeDumpV2 decodes a v2 DUMP result (pmaplist). Bytes after the list
// are ignored, as libtirpc clients do.
func DecodeDumpV2(res []byte) ([]Mapping, error) {
	var d xdr.Decoder
	d.Reset(res)
	var out []Mapping
	for d.More() {
		if len(out) == MaxDumpV2Len {
			return nil, wrap("pmap: decode pmaplist", ErrListTooLong)
		}
		var m Mapping
		m.decode(&d)
		if d.Err() != nil {
			break
		}
		out = append(out, m)
	}
	if err := d.Err(); err != nil {
		return nil, wrap("pmap: decode pmaplist", err)
	}
	return out, nil
}

// AppendDumpV3 appends es as an rpcblist (RFC 1833 §2.2.1, RPCBPROC_DUMP).
func AppendDumpV3(b []byte, es []RPCBEntry) []byte {
	for i := range es {
		b = xdr.AppendBool(b, true)
		b = es[i].AppendXDR(b)
	}
	return xdr.AppendBool(b, false)
}

// DecodeDumpV3 decodes a v3/v4 DUMP result (rpcblist). Bytes after the list
// are ignored.
func DecodeDumpV3(res []byte) ([]RPCBEntry, error) {
	var d xdr.Decoder
	d.Reset(res)
	var out []RPCBEntry
	for d.More() {
		if len(out) == MaxDumpV3Len {
			return nil, wrap("pmap: decode rpcblist", ErrListTooLong)
		}
		var e RPCBEntry
		e.decode(&d)
		if d.Err() != nil {
			break
		}
		out = append(out, e)
	}
	if err := d.Err(); err != nil {
		return nil, wrap("pmap: decode rpcblist", err)
	}
	return out, nil
}

// AppendEntryList appends es as an rpcb_entry_list_ptr (RFC 1833 §2.2.2,
// RPCBPROC_GETADDRLIST).
func AppendEntryList(b []byte, es []Entry) []byte {
	for i := range es {
		b = xdr.AppendBool(b, true)
		b = es[i].AppendXDR(b)
	}
	return xdr.AppendBool(b, false)
}

// DecodeEntryList decodes a GETADDRLIST result. Bytes after the list are
// ignored.
func DecodeEntryList(res []byte) ([]Entry, error) {
	var d xdr.Decoder
	d.Reset(res)
	var out []Entry
	for d.More() {
		if len(out) == MaxEntryListLen {
			return nil, wrap("pmap: decode rpcb_entry_list", ErrListTooLong)
		}
		var e Entry
		e.decode(&d)
		if d.Err() != nil {
			break
		}
		out = append(out, e)
	}
	if err := d.Err(); err != nil {
		return nil, wrap("pmap: decode rpcb_entry_list", err)
	}
	return out, nil
}
