package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
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
	h := &LineHandler{level: slog.LevelDebug, sink: func(l slog.Level, auth bool, line string) {
		f := "daemon"
		if auth {
			f = "auth"
		}
		got = append(got, f+"/"+l.String()+" "+line)
	}}
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
