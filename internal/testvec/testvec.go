package testvec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RelPath is the location of the exchanges file relative to the module root.
const RelPath = "testdata/vectors/exchanges.txt"

// Exchange is one call and the reply the reference sent to it.
type Exchange struct {
	N         int    // exchange number, 1-based, in the order sent
	Title     string // the "## " line without the marker
	Transport string // "udp", "tcp", "udp6" or "tcp6"
	From, To  string // source and destination, "127.0.0.1:53855", "[::1]:111"
	Note      string // the "note:" line, "" when there is none
	// Call and Reply are the exact bytes on the wire. For tcp and tcp6 they
	// start with the 4-byte record mark, as in the file. Reply is nil when
	// the reference sent nothing ("reply: (none within 1 s)").
	Call, Reply []byte
}

// Stream reports whether the exchange used a record-marked stream (tcp, tcp6).
func (e Exchange) Stream() bool { return e.Transport == "tcp" || e.Transport == "tcp6" }

// CallMsg returns the RPC message of the call, without the record mark on
// stream transports.
func (e Exchange) CallMsg() []byte { return e.msg(e.Call) }

// ReplyMsg returns the RPC message of the reply, without the record mark on
// stream transports; nil when there was no reply.
func (e Exchange) ReplyMsg() []byte { return e.msg(e.Reply) }

func (e Exchange) msg(b []byte) []byte {
	if b == nil || !e.Stream() {
		return b
	}
	return StripRecordMark(b)
}

// StripRecordMark removes RFC 5531 §11 record marks from b, which must hold
// exactly one complete record (one or more fragments, the last one flagged).
// It returns the concatenated fragment payloads, or nil when b is not
// exactly one well-formed record.
func StripRecordMark(b []byte) []byte {
	var out []byte
	for {
		if len(b) < 4 {
			return nil
		}
		mark := binary.BigEndian.Uint32(b)
		n := int(mark & 0x7fffffff)
		b = b[4:]
		if n > len(b) {
			return nil
		}
		out = append(out, b[:n]...)
		b = b[n:]
		if mark&0x80000000 != 0 {
			if len(b) != 0 {
				return nil
			}
			if out == nil {
				out = []byte{}
			}
			return out
		}
	}
}

// ByNumber returns the exchange numbered n.
func ByNumber(xs []Exchange, n int) (Exchange, bool) {
	for _, x := range xs {
		if x.N == n {
			return x, true
		}
	}
	return Exchange{}, false
}

// Get loads the exchanges and returns number n, failing the test when there
// is no such exchange.
func Get(t testing.TB, n int) Exchange {
	t.Helper()
	x, ok := ByNumber(Load(t), n)
	if !ok {
		t.Fatalf("testvec: no exchange %d", n)
	}
	return x
}

var (
	once    sync.Once
	loaded  []Exchange
	loadErr error
)

// Load returns every exchange in file order, failing the test if the file
// cannot be found or parsed. Each call returns a fresh deep copy, so a test
// may modify the bytes.
func Load(t testing.TB) []Exchange {
	t.Helper()
	once.Do(func() {
		var path string
		path, loadErr = File()
		if loadErr == nil {
			loaded, loadErr = ParseFile(path)
		}
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	out := make([]Exchange, len(loaded))
	for i, x := range loaded {
		x.Call = clone(x.Call)
		x.Reply = clone(x.Reply)
		out[i] = x
	}
	return out
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// File returns the absolute path of the exchanges file: it walks up from
// this source file's directory (then from the working directory) to the
// directory holding go.mod.
func File() (string, error) {
	var starts []string
	if _, src, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(src))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, filepath.FromSlash(RelPath))
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	return "", errors.New("testvec: cannot find " + RelPath + " under the module root")
}

// ParseFile parses the exchanges file at path.
func ParseFile(path string) ([]Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("testvec: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

const noReply = "(none within 1 s)"

// Parse reads the exchanges format: "## title", "exchange: n",
// "transport: net, from A to B", an optional "note: ...", "call:" and
// "reply:" each followed by indented hex words with optional "//"
// annotations, or "reply: (none within 1 s)". Lines starting with "# " are
// file comments.
func Parse(r io.Reader) ([]Exchange, error) {
	var (
		out     []Exchange
		cur     *Exchange
		section *[]byte // where hex lines go
		lineNo  int
	)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("testvec: line %d: %s", lineNo, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case line == "":
			section = nil
		case strings.HasPrefix(line, "## "):
			out = append(out, Exchange{Title: strings.TrimSpace(line[3:])})
			cur = &out[len(out)-1]
			section = nil
		case strings.HasPrefix(line, "#"):
			// file comment
		case cur == nil:
			return nil, fail("content before the first exchange: %q", line)
		case strings.HasPrefix(line, "exchange:"):
			n, err := strconv.Atoi(strings.TrimSpace(line[len("exchange:"):]))
			if err != nil || n <= 0 {
				return nil, fail("bad exchange number %q", line)
			}
			cur.N = n
		case strings.HasPrefix(line, "transport:"):
			// "transport: udp, from 127.0.0.1:53855 to 127.0.0.1:111"
			rest := strings.TrimSpace(line[len("transport:"):])
			netw, addrs, ok := strings.Cut(rest, ", from ")
			from, to, ok2 := strings.Cut(addrs, " to ")
			if !ok || !ok2 {
				return nil, fail("bad transport line %q", line)
			}
			switch netw {
			case "udp", "tcp", "udp6", "tcp6":
			default:
				return nil, fail("unknown transport %q", netw)
			}
			cur.Transport, cur.From, cur.To = netw, strings.TrimSpace(from), strings.TrimSpace(to)
		case strings.HasPrefix(line, "note:"):
			cur.Note = strings.TrimSpace(line[len("note:"):])
		case line == "call:":
			if cur.Call != nil {
				return nil, fail("second call in exchange %d", cur.N)
			}
			cur.Call = []byte{}
			section = &cur.Call
		case strings.HasPrefix(line, "reply:"):
			rest := strings.TrimSpace(line[len("reply:"):])
			switch rest {
			case "":
				cur.Reply = []byte{}
				section = &cur.Reply
			case noReply:
				cur.Reply = nil
				section = nil
			default:
				return nil, fail("bad reply line %q", line)
			}
		case strings.HasPrefix(line, "  "):
			if section == nil {
				return nil, fail("hex outside call/reply: %q", line)
			}
			b, err := hexWords(line)
			if err != nil {
				return nil, fail("%v", err)
			}
			*section = append(*section, b...)
		default:
			return nil, fail("unrecognised line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("testvec: %w", err)
	}
	for i := range out {
		x := &out[i]
		switch {
		case x.N == 0:
			return nil, fmt.Errorf("testvec: %q: no exchange number", x.Title)
		case x.Transport == "":
			return nil, fmt.Errorf("testvec: exchange %d: no transport", x.N)
		case len(x.Call) == 0:
			return nil, fmt.Errorf("testvec: exchange %d: no call bytes", x.N)
		case x.Reply != nil && len(x.Reply) == 0:
			return nil, fmt.Errorf("testvec: exchange %d: empty reply", x.N)
		}
		if x.Stream() {
			if StripRecordMark(x.Call) == nil {
				return nil, fmt.Errorf("testvec: exchange %d: call is not one record", x.N)
			}
			if x.Reply != nil && StripRecordMark(x.Reply) == nil {
				return nil, fmt.Errorf("testvec: exchange %d: reply is not one record", x.N)
			}
		}
	}
	return out, nil
}

// hexWords decodes one indented line: 8-digit hex words separated by
// spaces, then an optional "//" annotation.
func hexWords(line string) ([]byte, error) {
	if i := strings.Index(line, "//"); i >= 0 {
		line = line[:i]
	}
	var out []byte
	for _, w := range strings.Fields(line) {
		if len(w) != 8 {
			return nil, fmt.Errorf("hex word %q is not 8 digits", w)
		}
		b, err := hex.DecodeString(w)
		if err != nil {
			return nil, fmt.Errorf("hex word %q: %v", w, err)
		}
		out = append(out, b...)
	}
	if len(out) == 0 {
		return nil, errors.New("indented line without hex words")
	}
	return out, nil
}

// Hex formats b as the file does, 8-digit words separated by spaces; handy
// in test failure messages.
func Hex(b []byte) string {
	var s bytes.Buffer
	for i := 0; i < len(b); i += 4 {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(hex.EncodeToString(b[i:min(i+4, len(b))]))
	}
	return s.String()
}
