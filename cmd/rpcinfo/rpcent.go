package main

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxRPCLine bounds one line of /etc/rpc; longer lines are skipped, as a
// name database line never needs more.
const maxRPCLine = 4096

// rpcEnt is one line of /etc/rpc: "name number alias...".
type rpcEnt struct {
	Name    string
	Number  uint32
	Aliases []string
}

// rpcDB is the parsed /etc/rpc, in file order (the first match wins, as
// glibc's getrpcbyname and getrpcbynumber).
type rpcDB []rpcEnt

// loadRPCDB reads path; a missing or unreadable file is an empty database.
func loadRPCDB(path string) rpcDB {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseRPCDB(f)
}

// parseRPCDB parses the rpc(5) format: '#' starts a comment; fields are
// separated by blanks and tabs; lines without a name and a number are
// skipped. The number is read as glibc's atoi does (leading digits).
func parseRPCDB(r io.Reader) rpcDB {
	var db rpcDB
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxRPCLine)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		db = append(db, rpcEnt{Name: f[0], Number: uint32(atoi(f[1])), Aliases: f[2:]})
	}
	return db
}

// atoi is C's atoi: optional blanks and sign, then leading digits.
func atoi(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n int64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
		if n > 1<<40 {
			break
		}
	}
	if neg {
		return -n
	}
	return n
}

// byNumber returns the name of program prog, as getrpcbynumber.
func (db rpcDB) byNumber(prog uint32) (string, bool) {
	for i := range db {
		if db[i].Number == prog {
			return db[i].Name, true
		}
	}
	return "", false
}

// byName returns the number of the program called name (or aliased so), as
// getrpcbyname.
func (db rpcDB) byName(name string) (uint32, bool) {
	for i := range db {
		if db[i].Name == name {
			return db[i].Number, true
		}
		for _, a := range db[i].Aliases {
			if a == name {
				return db[i].Number, true
			}
		}
	}
	return 0, false
}

// strtol parses s as C's strtol(s, &end, 10) does: leading white space, an
// optional sign, decimal digits, clamped to the int64 range. ok reports
// that at least one digit was read and nothing follows.
func strtol(s string) (v int64, ok bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	u, err := strconv.ParseUint(t[:i], 10, 64)
	switch {
	case err != nil || (!neg && u > 1<<63-1):
		v = 1<<63 - 1
		if neg {
			v = -1 << 63
		}
	case neg && u >= 1<<63:
		v = -1 << 63
	case neg:
		v = -int64(u)
	default:
		v = int64(u)
	}
	return v, i == len(t)
}
