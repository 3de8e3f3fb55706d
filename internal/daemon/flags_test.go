package daemon

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	def := func(mod func(f *Flags)) *Flags {
		f := &Flags{StateDir: DefaultStateDir, Socket: DefaultSocket, LockFile: DefaultLockFile}
		mod(f)
		return f
	}
	for _, tc := range []struct {
		args []string
		want *Flags
	}{
		{nil, def(func(f *Flags) {})},
		{[]string{"-f", "-w"}, def(func(f *Flags) { f.Foreground, f.WarmStart = true, true })},
		{[]string{"-wf"}, def(func(f *Flags) { f.Foreground, f.WarmStart = true, true })},
		{[]string{"-dfw"}, def(func(f *Flags) { f.Debug, f.Foreground, f.WarmStart = 1, true, true })},
		{[]string{"-dd", "-d"}, def(func(f *Flags) { f.Debug = 3 })},
		{[]string{"-ailsr"}, def(func(f *Flags) { f.Abort, f.Insecure, f.Verbose, f.DaemonUser, f.Remote = true, true, true, true, true })},
		{[]string{"--version"}, def(func(f *Flags) { f.Version = true })},
		// -h: separate, attached, after other flags (the rest of the word is the argument), repeated.
		{[]string{"-h", "127.0.0.2", "-h::1", "-fh", "10.0.0.1", "-fh192.0.2.1"}, def(func(f *Flags) {
			f.Hosts = []string{"127.0.0.2", "::1", "10.0.0.1", "192.0.2.1"}
			f.Foreground = true
		})},
		// "-hf" takes "f" as the address, as getopt does.
		{[]string{"-hf"}, def(func(f *Flags) { f.Hosts = []string{"f"} })},
		// Non-options are permuted away and ignored; "--" ends the options.
		{[]string{"extra", "-f", "--", "-x"}, def(func(f *Flags) { f.Foreground = true })},
		{[]string{"-"}, def(func(f *Flags) {})},
		// Long options (ours), both forms.
		{[]string{"--state-dir=/var/lib/rpcbind", "--socket", "/tmp/s", "--max-conns=10", "--tcp-host-restrict",
			"--user=nobody", "--lock-file=/tmp/l", "--no-abstract", "--help"}, def(func(f *Flags) {
			f.StateDir, f.Socket, f.MaxConns, f.TCPHostRestrict = "/var/lib/rpcbind", "/tmp/s", 10, true
			f.User, f.LockFile, f.NoAbstract, f.Help = "nobody", "/tmp/l", true, true
		})},
	} {
		got, err := Parse("rpcbind", tc.args)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
}

// Messages are GNU getopt's, prefixed with argv[0] (checked against
// Debian's binary in cmd/rpcbind's tests).
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-x"}, "/sbin/rpcbind: invalid option -- 'x'"},
		{[]string{"-fL"}, "/sbin/rpcbind: invalid option -- 'L'"},
		// Debian's 1.2.6 has no -v (its usage line lists none): rejected.
		{[]string{"-v"}, "/sbin/rpcbind: invalid option -- 'v'"},
		{[]string{"-wv"}, "/sbin/rpcbind: invalid option -- 'v'"},
		{[]string{"-h"}, "/sbin/rpcbind: option requires an argument -- 'h'"},
		{[]string{"-f", "-wh"}, "/sbin/rpcbind: option requires an argument -- 'h'"},
		{[]string{"--bogus"}, "/sbin/rpcbind: unrecognized option '--bogus'"},
		{[]string{"--bogus=1"}, "/sbin/rpcbind: unrecognized option '--bogus=1'"},
		{[]string{"--help=yes"}, "/sbin/rpcbind: option '--help' doesn't allow an argument"},
		{[]string{"--state-dir"}, "/sbin/rpcbind: option '--state-dir' requires an argument"},
		{[]string{"--max-conns=0"}, `/sbin/rpcbind: invalid --max-conns "0"`},
	} {
		_, err := Parse("/sbin/rpcbind", tc.args)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Msg != tc.msg {
			t.Errorf("Parse(%q) = %v, want usage error %q", tc.args, err, tc.msg)
		}
	}
}

func TestRunAs(t *testing.T) {
	for _, tc := range []struct {
		f    Flags
		want string
	}{
		{Flags{}, "_rpc"},
		{Flags{DaemonUser: true}, "daemon"},
		{Flags{DaemonUser: true, User: "x"}, "x"},
	} {
		if got := tc.f.RunAs(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("-dfw\x00-h\x00::1\x00--state-dir=/x")
	f.Fuzz(func(t *testing.T, s string) {
		var args []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == 0 {
				args = append(args, s[start:i])
				start = i + 1
			}
		}
		Parse("rpcbind", args)
	})
}
