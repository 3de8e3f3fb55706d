package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"log/syslog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStderrHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(NewStderrHandler(&b, slog.LevelInfo))
	log.Debug("hidden")
	log.With("netid", "udp").Warn("cannot listen", "err", "address in use", AuthKey, true)
	log.Info("x", "n", 3)
	want := "rpcbind: cannot listen netid=udp err=\"address in use\"\nrpcbind: x n=3\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

func TestSyslogHandlerFacility(t *testing.T) {
	var got []string
	h := newLineHandler(slog.LevelDebug, func(l slog.Level, auth bool, line []byte) {
		f := "daemon"
		if auth {
			f = "auth"
		}
		got = append(got, f+"/"+l.String()+" "+string(line))
	})
	log := slog.New(h)
	log.Error("svc")
	log.Warn("connect from 10.0.0.1 to set(portmapper) declined (non-loopback sender)", AuthKey, true)
	want := "daemon/ERROR svc|auth/WARN connect from 10.0.0.1 to set(portmapper) declined (non-loopback sender)"
	if s := strings.Join(got, "|"); s != want {
		t.Errorf("got %q\nwant %q", s, want)
	}
}

// Warnings beyond the burst are dropped and counted; info passes.
func TestRateLimited(t *testing.T) {
	var b bytes.Buffer
	rl := NewRateLimited(NewStderrHandler(&b, slog.LevelInfo), 0, 2) // no refill
	log := slog.New(rl)
	for range 5 {
		log.Warn("denied")
	}
	log.Info("info passes")
	if n := strings.Count(b.String(), "denied"); n != 2 {
		t.Errorf("%d warnings logged, want 2", n)
	}
	if !strings.Contains(b.String(), "info passes") {
		t.Error("info record dropped")
	}
	if n := rl.Suppressed(); n != 3 {
		t.Errorf("suppressed = %d, want 3", n)
	}
}

// LogLine costs no allocation through the daemon's handlers (issue 13):
// a line written to stderr or to syslog, a line below the level, a
// warning the rate limit drops, and the first line after drops (which
// carries suppressed=N).
func TestLogLineAllocs(t *testing.T) {
	var b countWriter
	stderr := NewRateLimited(NewStderrHandler(&b, slog.LevelInfo), 0, 1) // one token, no refill
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var received atomic.Int64
	go func() { // a syslog daemon: reads every datagram
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	sh, closer := NewSyslogHandlerAt(slog.LevelInfo, sock)
	defer closer.Close()
	sys := NewRateLimited(sh, 1e9, 1<<30) // never limits
	line := []byte("connect from 192.0.2.1 to getport/addr(100003)")
	LogLine(stderr, slog.LevelWarn, true, line) // takes the token
	for name, f := range map[string]func(){
		"stderr info":     func() { LogLine(stderr, slog.LevelInfo, true, line) },
		"stderr debug":    func() { LogLine(stderr, slog.LevelDebug, false, line) },
		"stderr dropped":  func() { LogLine(stderr, slog.LevelWarn, true, line) },
		"syslog info":     func() { LogLine(sys, slog.LevelInfo, true, line) },
		"syslog warn":     func() { LogLine(sys, slog.LevelWarn, true, line) },
		"line handler":    func() { LogLine(sh, slog.LevelInfo, false, line) },
		"syslog filtered": func() { LogLine(sys, slog.LevelDebug, false, line) },
	} {
		before := b.n.Load()
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocations per line", name, n)
		}
		if strings.HasPrefix(name, "stderr info") && b.n.Load() == before {
			t.Errorf("%s: nothing written", name)
		}
	}
	// 21 runs each of "syslog info", "syslog warn", "line handler".
	for deadline := time.Now().Add(5 * time.Second); received.Load() < 63 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := received.Load(); n != 63 {
		t.Errorf("syslog received %d lines, want 63", n)
	}
	if stderr.Suppressed() == 0 {
		t.Fatal("no warning was dropped")
	}
	stderr.lim.SetBurst(1 << 30)
	stderr.lim.SetLimit(1e9)
	// AllocsPerRun calls f once before it counts: drop a line there.
	first := true
	if n := testing.AllocsPerRun(1, func() {
		if first {
			stderr.suppressed.Add(1)
			first = false
		}
		LogLine(stderr, slog.LevelWarn, true, line)
	}); n != 0 {
		t.Errorf("first line after drops: %v allocations", n)
	}
	stderr.suppressed.Add(2)
	LogLine(stderr, slog.LevelWarn, true, line)
	if want := string(line) + " suppressed=2\n"; !strings.HasSuffix(string(b.last), want) {
		t.Errorf("the first line after drops is %q, want it to end in %q", b.last, want)
	}
}

type countWriter struct {
	n    atomic.Int64
	last []byte
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.n.Add(1)
	w.last = append(w.last[:0], p...)
	return len(p), nil
}

// The syslog sink writes log/syslog's bytes: same priority (facility from
// AuthKey, severity from the level), tag, pid and newline; the timestamps
// are compared by form.
func TestSyslogFormat(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	read := func() string {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1024)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	stamp := regexp.MustCompile(`^(<\d+>)[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d `)
	h, closer := NewSyslogHandlerAt(slog.LevelDebug, sock)
	defer closer.Close()
	log := slog.New(h)
	for _, tc := range []struct {
		level slog.Level
		auth  bool
		pri   syslog.Priority
	}{
		{slog.LevelError, false, syslog.LOG_DAEMON | syslog.LOG_ERR},
		{slog.LevelWarn, true, syslog.LOG_AUTH | syslog.LOG_WARNING},
		{slog.LevelInfo, true, syslog.LOG_AUTH | syslog.LOG_INFO},
		{slog.LevelDebug, false, syslog.LOG_DAEMON | syslog.LOG_DEBUG},
	} {
		msg := "connect from 10.0.0.1 to dump(0)"
		w, err := syslog.Dial("unixgram", sock, tc.pri, "rpcbind")
		if err != nil {
			t.Fatal(err)
		}
		switch tc.level {
		case slog.LevelError:
			w.Err(msg)
		case slog.LevelWarn:
			w.Warning(msg)
		case slog.LevelInfo:
			w.Info(msg)
		default:
			w.Debug(msg)
		}
		w.Close()
		want := stamp.ReplaceAllString(read(), "${1}STAMP ")
		if tc.auth {
			log.Log(context.Background(), tc.level, msg, AuthKey, true)
		} else {
			log.Log(context.Background(), tc.level, msg)
		}
		got := stamp.ReplaceAllString(read(), "${1}STAMP ")
		if got != want || !strings.Contains(want, "STAMP rpcbind[") {
			t.Errorf("level %v auth %v: got %q, log/syslog writes %q", tc.level, tc.auth, got, want)
		}
	}
}

// AppendString and AppendBytes quote as the record path does.
func TestAppendAttr(t *testing.T) {
	for _, v := range []string{"udp", "", "local uid 0", `a"b`, `c\d e`, "x=y", "tab\there", "é ü", "\x01 ctl"} {
		var b strings.Builder
		h := NewStderrHandler(&b, slog.LevelInfo)
		slog.New(h).Info("m", "k", v)
		want := strings.TrimSuffix(strings.TrimPrefix(b.String(), "rpcbind: m"), "\n")
		if got := string(AppendString(nil, "k", v)); got != want {
			t.Errorf("AppendString(%q) = %q, want %q", v, got, want)
		}
		if got := string(AppendBytes(nil, "k", []byte(v))); got != want {
			t.Errorf("AppendBytes(%q) = %q, want %q", v, got, want)
		}
	}
}
