package rpc

import "strconv"

// RPCVersion is the only ONC RPC protocol version (RFC 5531 §8, rpcvers).
const RPCVersion = 2

// Limits from RFC 5531 and libtirpc.
const (
	// MaxAuthBytes caps the body of an opaque_auth (RFC 5531 §8.2,
	// "opaque body<400>"; libtirpc MAX_AUTH_BYTES).
	MaxAuthBytes = 400
	// MaxMachineName caps AUTH_SYS machinename (RFC 5531 appendix A,
	// "string machinename<255>"; libtirpc MAX_MACHINE_NAME).
	MaxMachineName = 255
	// MaxGIDs caps the AUTH_SYS gids array (RFC 5531 appendix A,
	// "unsigned int gids<16>"; libtirpc NGRPS).
	MaxGIDs = 16
	// MaxRecord is the reference's cap on a stream record: rpcbind sets
	// RPC_SVC_CONNMAXREC_SET to RPC_MAXDATASIZE (9000).
	MaxRecord = 9000
)

// MsgType is msg_type (RFC 5531 §9).
type MsgType uint32

const (
	Call  MsgType = 0 // CALL
	Reply MsgType = 1 // REPLY
)

// ReplyStat is reply_stat (RFC 5531 §9).
type ReplyStat uint32

const (
	MsgAccepted ReplyStat = 0 // MSG_ACCEPTED
	MsgDenied   ReplyStat = 1 // MSG_DENIED
)

// AcceptStat is accept_stat (RFC 5531 §9).
type AcceptStat uint32

const (
	Success      AcceptStat = 0 // SUCCESS
	ProgUnavail  AcceptStat = 1 // PROG_UNAVAIL
	ProgMismatch AcceptStat = 2 // PROG_MISMATCH
	ProcUnavail  AcceptStat = 3 // PROC_UNAVAIL
	GarbageArgs  AcceptStat = 4 // GARBAGE_ARGS
	SystemErr    AcceptStat = 5 // SYSTEM_ERR
)

// RejectStat is reject_stat (RFC 5531 §9).
type RejectStat uint32

const (
	RPCMismatch RejectStat = 0 // RPC_MISMATCH
	AuthError   RejectStat = 1 // AUTH_ERROR
)

// AuthStat is auth_stat (RFC 5531 §9).
type AuthStat uint32

const (
	AuthOK           AuthStat = 0 // AUTH_OK
	AuthBadCred      AuthStat = 1 // AUTH_BADCRED
	AuthRejectedCred AuthStat = 2 // AUTH_REJECTEDCRED
	AuthBadVerf      AuthStat = 3 // AUTH_BADVERF
	AuthRejectedVerf AuthStat = 4 // AUTH_REJECTEDVERF
	AuthTooWeak      AuthStat = 5 // AUTH_TOOWEAK
	AuthInvalidResp  AuthStat = 6 // AUTH_INVALIDRESP
	AuthFailed       AuthStat = 7 // AUTH_FAILED
)

// AuthFlavor is auth_flavor (RFC 5531 §8.2 and the IANA registry).
type AuthFlavor uint32

const (
	AuthNone  AuthFlavor = 0 // AUTH_NONE (AUTH_NULL)
	AuthSys   AuthFlavor = 1 // AUTH_SYS (AUTH_UNIX)
	AuthShort AuthFlavor = 2 // AUTH_SHORT
	AuthDH    AuthFlavor = 3 // AUTH_DH (AUTH_DES)
	RPCSECGSS AuthFlavor = 6 // RPCSEC_GSS
)

func name(names []string, v uint32) string {
	if uint64(v) < uint64(len(names)) && names[v] != "" {
		return names[v]
	}
	return strconv.FormatUint(uint64(v), 10)
}

var (
	msgTypeNames    = []string{"CALL", "REPLY"}
	replyStatNames  = []string{"MSG_ACCEPTED", "MSG_DENIED"}
	acceptStatNames = []string{"SUCCESS", "PROG_UNAVAIL", "PROG_MISMATCH", "PROC_UNAVAIL", "GARBAGE_ARGS", "SYSTEM_ERR"}
	rejectStatNames = []string{"RPC_MISMATCH", "AUTH_ERROR"}
	authStatNames   = []string{"AUTH_OK", "AUTH_BADCRED", "AUTH_REJECTEDCRED", "AUTH_BADVERF",
		"AUTH_REJECTEDVERF", "AUTH_TOOWEAK", "AUTH_INVALIDRESP", "AUTH_FAILED"}
	authFlavorNames = []string{"AUTH_NONE", "AUTH_SYS", "AUTH_SHORT", "AUTH_DH", "", "", "RPCSEC_GSS"}
)

// String returns the RFC mnemonic, or the number for unknown values.
func (t MsgType) String() string { return name(msgTypeNames, uint32(t)) }

// String returns the RFC mnemonic, or the number for unknown values.
func (s ReplyStat) String() string { return name(replyStatNames, uint32(s)) }

// String returns the RFC mnemonic, or the number for unknown values.
func (s AcceptStat) String() string { return name(acceptStatNames, uint32(s)) }

// String returns the RFC mnemonic, or the number for unknown values.
func (s RejectStat) String() string { return name(rejectStatNames, uint32(s)) }

// String returns the RFC mnemonic, or the number for unknown values.
func (s AuthStat) String() string { return name(authStatNames, uint32(s)) }

// String returns the RFC mnemonic, or the number for unknown values.
func (f AuthFlavor) String() string { return name(authFlavorNames, uint32(f)) }
