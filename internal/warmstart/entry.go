package warmstart

// Entry is one registration, the rpcb structure of RFC 1833 §2.2.
// TODO: becomes an alias of registry.Entry once internal/registry exists.
type Entry struct {
	Prog, Vers uint32
	Netid      string
	Addr       string
	Owner      string
}
