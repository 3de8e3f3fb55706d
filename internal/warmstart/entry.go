package warmstart

import "github.com/openrpcbind/rpcbind/internal/registry"

// Entry is one registration, the rpcb structure of RFC 1833 §2.2.
type Entry = registry.Entry

// Op is the kind of a journal record: registry.OpSet or registry.OpUnset,
// so that (*Store).Append can be the registry's observer as it is. The
// journal stores it as a u32 with the same values.
type Op = registry.Op

const (
	OpSet   = registry.OpSet   // an entry was appended (1)
	OpUnset = registry.OpUnset // an entry was removed (2)
)
