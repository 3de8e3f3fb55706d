package ifaddr

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Flags are the interface flags addrmerge looks at (getifaddrs ifa_flags).
type Flags uint32

const (
	FlagUp           Flags = 1 << iota // IFF_UP
	FlagLoopback                       // IFF_LOOPBACK
	FlagPointToPoint                   // IFF_POINTOPOINT
)

// Addr is one interface address, as one getifaddrs entry of family AF_INET
// or AF_INET6.
type Addr struct {
	Prefix netip.Prefix // the address (host bits kept, no zone) and its prefix length
	Flags  Flags        // flags of the interface
	Index  int          // interface index; the sin6_scope_id of link-local addresses
	Name   string       // interface name, to match a caller's zone
}

// MinRefresh is the fastest the fallback poller re-reads the list when netlink
// notifications are unavailable (DECISIONS "interface list").
const MinRefresh = time.Second

// Cache holds the current interface list. Readers never block and never
// touch the kernel. A nil *Cache behaves as an empty list.
type Cache struct {
	snap atomic.Pointer[[]Addr]

	load      func() ([]Addr, error) // nil for a static cache
	closeOnce sync.Once
	done      chan struct{}
	closer    func() error // stops the watcher; nil if none
	wg        sync.WaitGroup
}

// NewStatic returns a cache that always holds addrs (in getifaddrs order);
// for tests and for hosts where the list is configured.
func NewStatic(addrs []Addr) *Cache {
	c := &Cache{done: make(chan struct{})}
	s := clean(addrs)
	c.snap.Store(&s)
	return c
}

// New reads the interface list and keeps it current from netlink
// notifications until Close. If no notification socket can be opened it
// falls back to re-reading the list every MinRefresh.
func New() (*Cache, error) {
	c := &Cache{load: System, done: make(chan struct{})}
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	if err := c.watch(); err != nil {
		c.wg.Add(1)
		go c.poll()
	}
	return c, nil
}

// Addrs returns the current snapshot. The caller must not modify it.
func (c *Cache) Addrs() []Addr {
	if c == nil {
		return nil
	}
	if p := c.snap.Load(); p != nil {
		return *p
	}
	return nil
}

// Refresh re-reads the list now. It is a no-op on a static cache.
func (c *Cache) Refresh() error {
	if c == nil || c.load == nil {
		return nil
	}
	a, err := c.load()
	if err != nil {
		return err
	}
	a = clean(a)
	c.snap.Store(&a)
	return nil
}

// Close stops the watcher. The last snapshot stays readable.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		if c.closer != nil {
			err = c.closer()
		}
		c.wg.Wait()
	})
	return err
}

func (c *Cache) poll() {
	defer c.wg.Done()
	t := time.NewTicker(MinRefresh)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			_ = c.Refresh() // keep the previous snapshot on error
		}
	}
}

// clean copies addrs, dropping zones and entries that are not IP addresses.
func clean(addrs []Addr) []Addr {
	out := make([]Addr, 0, len(addrs))
	for _, a := range addrs {
		if !a.Prefix.IsValid() {
			continue
		}
		a.Prefix = netip.PrefixFrom(a.Prefix.Addr().WithZone(""), a.Prefix.Bits())
		out = append(out, a)
	}
	return out
}

// System reads the interface list with net.Interfaces, in kernel (ifindex,
// address) order, as getifaddrs does within one address family.
func System() ([]Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, errors.Join(errors.New("ifaddr: list interfaces"), err)
	}
	var out []Addr
	for _, ifi := range ifs {
		as, err := ifi.Addrs()
		if err != nil {
			continue // the interface went away meanwhile
		}
		var fl Flags
		if ifi.Flags&net.FlagUp != 0 {
			fl |= FlagUp
		}
		if ifi.Flags&net.FlagLoopback != 0 {
			fl |= FlagLoopback
		}
		if ifi.Flags&net.FlagPointToPoint != 0 {
			fl |= FlagPointToPoint
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, bits := ipn.Mask.Size()
			if bits == 0 {
				continue // non-canonical mask
			}
			if ip.Is4In6() && bits == 32 {
				ip = ip.Unmap()
			}
			out = append(out, Addr{Prefix: netip.PrefixFrom(ip, ones), Flags: fl, Index: ifi.Index, Name: ifi.Name})
		}
	}
	return out, nil
}

// family of a netid in /etc/netconfig terms: 4 = inet, 6 = inet6, 0 = other.
// Only the four IP transports rpcbind serves can be merged (mergeaddr looks
// the netid up among its own transports; "local" never merges for an unnamed
// AF_UNIX peer).
func family(netid string) int {
	switch netid {
	case "udp", "tcp":
		return 4
	case "udp6", "tcp6":
		return 6
	}
	return 0
}

// Merge is AppendMerge returning a string.
func (c *Cache) Merge(caller netip.AddrPort, hint, regUaddr, netid string) (string, bool) {
	b, ok := c.AppendMerge(nil, caller, []byte(hint), regUaddr, netid)
	return string(b), ok
}

// AppendMerge appends the universal address a caller should use to reach the
// service registered at regUaddr on netid (spec §1.6; rpcbind mergeaddr +
// addrmerge). hint is the request's r_addr ("" = none). ok is false where the
// reference's mergeaddr returns NULL: unknown netid, no caller address (the
// AF_UNIX socket), an unparsable hint or registered address, or no usable
// interface. It does not allocate beyond growing b.
//
// The steps, as addrmerge:
//  1. the hint is parsed with the netid's family; failure → !ok;
//  2. a caller at the unspecified address ("0.0.0.0.", "::.") gets regUaddr back;
//  3. among UP interface addresses of that family, in list order: an exact
//     match of the hint wins at once; otherwise the first whose prefix holds
//     the hint is remembered, and replaced by any later address of an interface
//     that is neither loopback nor point-to-point while the remembered one is;
//     link-local addresses compare by the caller's scope (interface) instead;
//  4. the result is that interface address with regUaddr's port.
func (c *Cache) AppendMerge(b []byte, caller netip.AddrPort, hint []byte, regUaddr, netid string) ([]byte, bool) {
	fam := family(netid)
	if fam == 0 || !caller.IsValid() {
		return b, false
	}
	ca := caller.Addr()
	if fam == 4 {
		ca = ca.Unmap()
		if !ca.Is4() {
			return b, false
		}
	} else if !ca.Is6() {
		return b, false
	}
	h := ca.WithZone("")
	if len(hint) != 0 {
		ha, _, ok := parseUaddr(fam, bytesString(hint))
		if !ok {
			return b, false
		}
		h = ha
	}
	if ca.IsUnspecified() {
		return append(b, regUaddr...), true
	}
	callerLL := ca.Is6() && ca.IsLinkLocalUnicast()
	hintLL := h.Is6() && h.IsLinkLocalUnicast()
	addrs := c.Addrs()
	best, exact := -1, -1
	for i := range addrs {
		a := &addrs[i]
		ip := a.Prefix.Addr()
		if a.Flags&FlagUp == 0 || (fam == 4) != ip.Is4() {
			continue
		}
		if fam == 6 && ip.IsLinkLocalUnicast() && callerLL && hintLL {
			if c.scopeOf(ca.Zone(), addrs) == a.Index {
				best = i
				break
			}
		} else if a.Prefix.Contains(h) {
			if best < 0 {
				best = i
			}
			if ip == h {
				exact = i
				break
			}
		}
		// Prefer "normal" interfaces to loopback and point-to-point ones.
		if best < 0 || (a.Flags&(FlagLoopback|FlagPointToPoint) == 0 &&
			addrs[best].Flags&(FlagLoopback|FlagPointToPoint) != 0) {
			best = i
		}
	}
	if exact >= 0 {
		best = exact
	}
	if best < 0 {
		return b, false
	}
	_, port, ok := parseUaddr(fam, regUaddr)
	if !ok {
		return b, false
	}
	return appendUaddr(b, addrs[best].Prefix.Addr(), port), true
}

// scopeOf maps a caller zone (interface name or decimal index) to an index.
func (c *Cache) scopeOf(zone string, addrs []Addr) int {
	if zone == "" {
		return 0
	}
	if n, err := strconv.Atoi(zone); err == nil {
		return n
	}
	for i := range addrs {
		if addrs[i].Name == zone {
			return addrs[i].Index
		}
	}
	return -1
}
