package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// AuthKey marks a record for the LOG_AUTH facility (access and denial
// events, spec §4.5): slog.Bool(AuthKey, true).
const AuthKey = "auth"

// maxLineBuf bounds the line buffer a handler keeps between records: a
// longer line (a long error) is formatted in a buffer that is then let go,
// so one odd line does not pin its size for the daemon's life.
const maxLineBuf = 4 << 10

// LineHandler formats records as one line each — "msg key=value ..." — and
// hands them to a sink with their level. It backs both stderr and syslog.
// Lines are formatted in one reused buffer under a mutex (lineOut), so a
// line costs no allocation on its way to the sink: LogLine writes the
// per-request lines (-l, -d, denials) without allocating at all.
type LineHandler struct {
	level slog.Leveler
	out   *lineOut // shared by the WithAttrs copies
	attrs string   // preformatted WithAttrs
	auth  bool
}

// lineOut is a sink and the buffer lines are formatted in.
type lineOut struct {
	mu   sync.Mutex
	buf  []byte
	sink func(level slog.Level, auth bool, line []byte) // called under mu; line is not retained
}

func newLineHandler(level slog.Leveler, sink func(level slog.Level, auth bool, line []byte)) *LineHandler {
	return &LineHandler{level: level, out: &lineOut{sink: sink}}
}

// NewStderrHandler writes "rpcbind: msg key=value" lines on w (-f).
func NewStderrHandler(w io.Writer, level slog.Leveler) *LineHandler {
	s := &stderrSink{w: w}
	return newLineHandler(level, s.write)
}

// stderrSink frames a line for stderr; called under lineOut.mu.
type stderrSink struct {
	w   io.Writer
	buf []byte
}

func (s *stderrSink) write(_ slog.Level, _ bool, line []byte) {
	b := append(s.buf[:0], "rpcbind: "...)
	b = append(b, line...)
	b = append(b, '\n')
	s.w.Write(b)
	if cap(b) <= maxLineBuf {
		s.buf = b
	}
}

// NewSyslogHandler logs to syslog as the reference does:
// openlog("rpcbind", LOG_PID, LOG_DAEMON); auth records go to LOG_AUTH.
// Like openlog, it never fails: while syslog cannot be reached (no
// /dev/log yet at boot, a container), each record tries to connect again
// and is dropped if that fails.
func NewSyslogHandler(level slog.Leveler) (*LineHandler, io.Closer) {
	return NewSyslogHandlerAt(level, "")
}

// NewSyslogHandlerAt is NewSyslogHandler on the syslog socket at path (a
// datagram or stream AF_UNIX socket); "" tries log/syslog's paths in its
// order. The messages are log/syslog's, byte for byte
// ("<PRI>Mmm dd hh:mm:ss rpcbind[PID]: msg\n"), formatted in a reused
// buffer: a line costs no allocation while the socket is connected.
func NewSyslogHandlerAt(level slog.Leveler, path string) (*LineHandler, io.Closer) {
	s := &syslogSink{path: path}
	h := newLineHandler(level, s.write)
	return h, &syslogCloser{out: h.out, s: s}
}

// syslogPaths are log/syslog's (unixSyslog): each path as a datagram
// socket, then each as a stream socket.
var syslogPaths = [...]string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// syslogSink writes to syslog; called under lineOut.mu.
type syslogSink struct {
	path string
	conn net.Conn
	pid  int
	buf  []byte
}

func (s *syslogSink) connect() bool {
	paths := syslogPaths[:]
	if s.path != "" {
		paths = []string{s.path}
	}
	for _, network := range [...]string{"unixgram", "unix"} {
		for _, p := range paths {
			if c, err := net.Dial(network, p); err == nil {
				s.conn, s.pid = c, os.Getpid()
				return true
			}
		}
	}
	return false
}

func (s *syslogSink) write(l slog.Level, auth bool, line []byte) {
	pri := syslog.LOG_DAEMON
	if auth {
		pri = syslog.LOG_AUTH
	}
	switch {
	case l >= slog.LevelError:
		pri |= syslog.LOG_ERR
	case l >= slog.LevelWarn:
		pri |= syslog.LOG_WARNING
	case l >= slog.LevelInfo:
		pri |= syslog.LOG_INFO
	default:
		pri |= syslog.LOG_DEBUG
	}
	// log/syslog's writeAndRetry: on a write error, connect again and
	// retry once.
	for range 2 {
		if s.conn == nil && !s.connect() {
			return
		}
		b := append(s.buf[:0], '<')
		b = strconv.AppendInt(b, int64(pri), 10)
		b = append(b, '>')
		b = time.Now().AppendFormat(b, time.Stamp)
		b = append(b, " rpcbind["...)
		b = strconv.AppendInt(b, int64(s.pid), 10)
		b = append(b, "]: "...)
		b = append(b, line...)
		if len(line) == 0 || line[len(line)-1] != '\n' {
			b = append(b, '\n')
		}
		if cap(b) <= maxLineBuf {
			s.buf = b
		}
		if _, err := s.conn.Write(b); err == nil {
			return
		}
		s.conn.Close()
		s.conn = nil
	}
}

type syslogCloser struct {
	out *lineOut
	s   *syslogSink
}

func (c *syslogCloser) Close() error {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.s.conn != nil {
		c.s.conn.Close()
		c.s.conn = nil
	}
	return nil
}

func (h *LineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *LineHandler) Handle(_ context.Context, r slog.Record) error {
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()
	b := append(o.buf[:0], r.Message...)
	b = append(b, h.attrs...)
	auth := h.auth
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == AuthKey {
			auth = a.Value.Bool()
			return true
		}
		b = appendAttr(b, "", a)
		return true
	})
	o.write(r.Level, auth, b)
	return nil
}

// write hands b, formatted in o.buf, to the sink and keeps the buffer
// unless it grew past maxLineBuf. Called under o.mu.
func (o *lineOut) write(level slog.Level, auth bool, b []byte) {
	o.sink(level, auth, b)
	if cap(b) <= maxLineBuf {
		o.buf = b[:0]
	} else {
		o.buf = nil
	}
}

// line writes a preformatted line (LogLine), then the handler's attrs and,
// when suppressed > 0, " suppressed=N". line is copied, never retained.
func (h *LineHandler) line(level slog.Level, auth bool, line []byte, suppressed int64) {
	if level < h.level.Level() {
		return
	}
	o := h.out
	o.mu.Lock()
	b := append(o.buf[:0], line...)
	b = append(b, h.attrs...)
	if suppressed > 0 {
		b = AppendInt(b, "suppressed", suppressed)
	}
	o.write(level, auth || h.auth, b)
	o.mu.Unlock()
}

func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			b = appendAttr(b, prefix+a.Key+".", g)
		}
		return b
	}
	b = append(b, ' ')
	b = append(b, prefix...)
	return appendValue(b, a.Key, a.Value.Resolve().String())
}

// AppendString appends " key=value" as the handlers format an attribute:
// the value is quoted (Go syntax) when it is empty or holds a space, tab,
// newline, '"' or '='.
func AppendString(b []byte, key, value string) []byte {
	return appendValue(append(b, ' '), key, value)
}

// AppendBytes is AppendString for a value in a byte slice; it allocates
// only to quote a value with non-ASCII or control bytes.
func AppendBytes(b []byte, key string, value []byte) []byte {
	b = append(append(append(b, ' '), key...), '=')
	if !needsQuote(value) {
		return append(b, value...)
	}
	for _, c := range value {
		if c < 0x20 || c > 0x7e {
			return strconv.AppendQuote(b, string(value))
		}
	}
	b = append(b, '"')
	for _, c := range value {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

// AppendInt appends " key=N".
func AppendInt(b []byte, key string, n int64) []byte {
	b = append(append(append(b, ' '), key...), '=')
	return strconv.AppendInt(b, n, 10)
}

// AppendBool appends " key=true" or " key=false".
func AppendBool(b []byte, key string, v bool) []byte {
	b = append(append(append(b, ' '), key...), '=')
	return strconv.AppendBool(b, v)
}

func appendValue(b []byte, key, v string) []byte {
	b = append(append(b, key...), '=')
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}

func needsQuote(v []byte) bool {
	return len(v) == 0 || bytes.ContainsAny(v, " \t\n\"=")
}

func (h *LineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	b := []byte(h.attrs)
	for _, a := range as {
		if a.Key == AuthKey {
			n.auth = a.Value.Bool()
			continue
		}
		b = appendAttr(b, "", a)
	}
	n.attrs = string(b)
	return &n
}

// WithGroup is flattened: our records do not nest.
func (h *LineHandler) WithGroup(string) slog.Handler { return h }

// LogLine writes one line, formatted by the caller ("msg key=value ...",
// see AppendString), through h at level; auth sends it to LOG_AUTH. When h
// is this package's (a RateLimited or a LineHandler) it costs no
// allocation, whether the line is written, filtered out by level or
// dropped by the rate limit: the per-request lines (-l, -d, denials) take
// this path. line is copied, never retained. Another handler gets an
// slog.Record.
func LogLine(h slog.Handler, level slog.Level, auth bool, line []byte) {
	switch h := h.(type) {
	case *RateLimited:
		h.line(level, auth, line)
	case *LineHandler:
		h.line(level, auth, line, 0)
	default:
		logRecord(h, level, auth, line, 0)
	}
}

func logRecord(h slog.Handler, level slog.Level, auth bool, line []byte, suppressed int64) {
	ctx := context.Background()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, string(line), 0)
	if auth {
		r.AddAttrs(slog.Bool(AuthKey, true))
	}
	if suppressed > 0 {
		r.AddAttrs(slog.Int64("suppressed", suppressed))
	}
	h.Handle(ctx, r)
}

// RateLimited passes records below Warn through and lets at most burst
// warnings and errors, refilled at r per second, reach h; the next record
// that passes carries "suppressed=N". Denial logs from the network
// (spec §3.5) must not become a disk-filling or syslog-flooding attack.
type RateLimited struct {
	h          slog.Handler
	lim        *rate.Limiter
	suppressed *atomic.Int64
}

// NewRateLimited wraps h.
func NewRateLimited(h slog.Handler, r rate.Limit, burst int) *RateLimited {
	return &RateLimited{h: h, lim: rate.NewLimiter(r, burst), suppressed: new(atomic.Int64)}
}

func (l *RateLimited) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *RateLimited) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		if !l.lim.Allow() {
			l.suppressed.Add(1)
			return nil
		}
		if n := l.suppressed.Swap(0); n > 0 {
			r = r.Clone()
			r.AddAttrs(slog.Int64("suppressed", n))
		}
	}
	return l.h.Handle(ctx, r)
}

// line is the LogLine path: the level check first (a filtered line takes
// no token), then the limit for warnings and errors; a dropped line costs
// an atomic add.
func (l *RateLimited) line(level slog.Level, auth bool, line []byte) {
	lh, ours := l.h.(*LineHandler)
	if ours && level < lh.level.Level() || !ours && !l.h.Enabled(context.Background(), level) {
		return
	}
	var n int64
	if level >= slog.LevelWarn {
		if !l.lim.Allow() {
			l.suppressed.Add(1)
			return
		}
		n = l.suppressed.Swap(0)
	}
	if ours {
		lh.line(level, auth, line, n)
		return
	}
	logRecord(l.h, level, auth, line, n)
}

func (l *RateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	return &RateLimited{h: l.h.WithAttrs(as), lim: l.lim, suppressed: l.suppressed}
}

func (l *RateLimited) WithGroup(g string) slog.Handler {
	return &RateLimited{h: l.h.WithGroup(g), lim: l.lim, suppressed: l.suppressed}
}

// Suppressed is the number of records dropped since the last one passed.
func (l *RateLimited) Suppressed() int64 { return l.suppressed.Load() }
