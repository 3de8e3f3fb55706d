package access

import "net/netip"

// SourceBits6 is the IPv6 prefix length that per-source connection budgets
// count by (DECISIONS "timeouts and caps": /64 or wider, never the full
// address). A /64 is the smallest subnet a site is given; its owner picks
// any of its 2^64 addresses per connection, so counting by full address
// would let one host take every slot.
const SourceBits6 = 64

// SourcePrefix is the unit a per-source connection budget counts: an
// IPv4 address (an IPv4-mapped IPv6 address counts as that IPv4 address)
// as a /32, an IPv6 address as its /64. The zone is dropped. The zero
// Prefix for an invalid address.
func SourcePrefix(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(SourceBits6)
	return p
}
