package nspawntest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// AptSourcesDir and AptSourcesList are where HostMirror looks.
const (
	AptSourcesList = "/etc/apt/sources.list"
	AptSourcesDir  = "/etc/apt/sources.list.d"
)

// maxSourcesBytes bounds what HostMirror reads from one sources file (they
// are a few hundred bytes; a larger one is not an apt sources file).
const maxSourcesBytes = 1 << 20

// HostMirror returns the URI of the first "deb" source of the machine's apt
// configuration (one-line sources.list, then *.list and deb822 *.sources in
// sources.list.d, in name order) that serves suite with component main. The
// container test debootstraps from it, so no mirror host name is written in
// the code: the machine's own apt configuration says where Debian is.
func HostMirror(suite string) (string, error) {
	files := []string{AptSourcesList}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(AptSourcesDir, pat))
		sort.Strings(m)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := readBounded(f)
		if err != nil {
			continue
		}
		var uri string
		if strings.HasSuffix(f, ".sources") {
			uri = mirrorDeb822(string(b), suite)
		} else {
			uri = mirrorOneLine(string(b), suite)
		}
		if uri != "" {
			return strings.TrimRight(uri, "/"), nil
		}
	}
	return "", fmt.Errorf("nspawntest: no apt source for %s main in %s or %s (set RPCBIND_NSPAWN_MIRROR)", suite, AptSourcesList, AptSourcesDir)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, maxSourcesBytes)
	n, _ := f.Read(b)
	return b[:n], nil
}

// mirrorOneLine parses "deb [options] URI suite component..." lines.
func mirrorOneLine(s, suite string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // [arch=amd64 signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) >= 3 && f[1] == suite && contains(f[2:], "main") {
			return f[0]
		}
	}
	return ""
}

// mirrorDeb822 parses deb822 stanzas (Types, URIs, Suites, Components).
func mirrorDeb822(s, suite string) string {
	for _, stanza := range strings.Split(s, "\n\n") {
		fields := map[string][]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.Fields(v)
			}
		}
		if en := fields["enabled"]; len(en) > 0 && en[0] == "no" {
			continue
		}
		if contains(fields["types"], "deb") && contains(fields["suites"], suite) &&
			contains(fields["components"], "main") && len(fields["uris"]) > 0 {
			return fields["uris"][0]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
