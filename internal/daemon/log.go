package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// AuthKey marks a record for the LOG_AUTH facility (access and denial
// events, spec §4.5): slog.Bool(AuthKey, true).
const AuthKey = "auth"

// LineHandler formats records as one line each — "msg key=value ..." — and
// hands them to a sink with their level. It backs both stderr and syslog.
type LineHandler struct {
	level slog.Leveler
	sink  func(level slog.Level, auth bool, line string)
	attrs string // preformatted WithAttrs
	auth  bool
}

// NewStderrHandler writes "rpcbind: msg key=value" lines on w (-f).
func NewStderrHandler(w io.Writer, level slog.Leveler) *LineHandler {
	var mu sync.Mutex
	return &LineHandler{level: level, sink: func(_ slog.Level, _ bool, line string) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, "rpcbind: "+line+"\n")
	}}
}

// NewSyslogHandler logs to syslog as the reference does:
// openlog("rpcbind", LOG_PID, LOG_DAEMON); auth records go to LOG_AUTH.
// Like openlog, it never fails: while syslog cannot be reached (no
// /dev/log yet at boot, a container), each record tries to connect again
// and is dropped if that fails.
func NewSyslogHandler(level slog.Leveler) (*LineHandler, io.Closer) {
	s := &syslogSink{}
	return &LineHandler{level: level, sink: s.write}, s
}

type syslogSink struct {
	mu         sync.Mutex
	daemon, au *syslog.Writer
}

func (s *syslogSink) write(l slog.Level, auth bool, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.daemon == nil {
		d, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "rpcbind")
		if err != nil {
			return
		}
		a, err := syslog.New(syslog.LOG_AUTH|syslog.LOG_INFO, "rpcbind")
		if err != nil {
			d.Close()
			return
		}
		s.daemon, s.au = d, a
	}
	w := s.daemon
	if auth {
		w = s.au
	}
	switch {
	case l >= slog.LevelError:
		w.Err(line)
	case l >= slog.LevelWarn:
		w.Warning(line)
	case l >= slog.LevelInfo:
		w.Info(line)
	default:
		w.Debug(line)
	}
}

func (s *syslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.daemon != nil {
		s.daemon.Close()
		s.au.Close()
		s.daemon, s.au = nil, nil
	}
	return nil
}

func (h *LineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *LineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	auth := h.auth
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == AuthKey {
			auth = a.Value.Bool()
			return true
		}
		appendAttr(&b, "", a)
		return true
	})
	h.sink(r.Level, auth, b.String())
	return nil
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			appendAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	v := a.Value.Resolve().String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		v = fmt.Sprintf("%q", v)
	}
	b.WriteString(" " + prefix + a.Key + "=" + v)
}

func (h *LineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		if a.Key == AuthKey {
			n.auth = a.Value.Bool()
			continue
		}
		appendAttr(&b, "", a)
	}
	n.attrs = b.String()
	return &n
}

// WithGroup is flattened: our records do not nest.
func (h *LineHandler) WithGroup(string) slog.Handler { return h }

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

func (l *RateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	return &RateLimited{h: l.h.WithAttrs(as), lim: l.lim, suppressed: l.suppressed}
}

func (l *RateLimited) WithGroup(g string) slog.Handler {
	return &RateLimited{h: l.h.WithGroup(g), lim: l.lim, suppressed: l.suppressed}
}

// Suppressed is the number of records dropped since the last one passed.
func (l *RateLimited) Suppressed() int64 { return l.suppressed.Load() }
