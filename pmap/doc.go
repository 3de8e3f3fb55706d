// Package pmap holds the wire types of ONC RPC program 100000: the
// portmapper (version 2) and rpcbind (versions 3 and 4) of RFC 1833, with
// the netid and universal-address conventions of RFC 5665.
//
// Every type has an append-style encoder, AppendXDR(b []byte) []byte, and a
// decoder, DecodeXDR(d *xdr.Decoder) error, that reads the fields in the
// order of the RFC's XDR definition on a sticky-error cursor. Server-side
// decoders (Mapping, RPCB, CallArgs, Netbuf) do not allocate: byte fields
// alias the message. Client-side decoders of list results (DecodeDumpV2,
// DecodeDumpV3, DecodeEntryList, DecodeStatByVers) copy, never size an
// allocation from the wire, and stop at a named maximum list length.
//
// Universal addresses (uaddrs) are handled twice: ParseUaddr and
// AppendUaddr are strict and typed (netip.AddrPort); Uaddr2Taddr,
// Taddr2Uaddr and UaddrPort reproduce libtirpc 1.3.3 and rpcbind 1.2.6 to
// the byte, including their leniency, because clients can observe it.
package pmap
