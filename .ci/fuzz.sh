#!/usr/bin/env bash
# Runs every native fuzz target in the module for FUZZTIME (default 10s).
# Targets are discovered per package with `go test -list`, so new ones are
# picked up without editing this file. Usage: .ci/fuzz.sh [packages...]
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
fuzztime=${FUZZTIME:-10s}
cd "$(dirname "$0")/.."

if (($#)); then pkgs=("$@"); else mapfile -t pkgs < <(go list ./...); fi

n=0 failed=0
for pkg in "${pkgs[@]}"; do
	mapfile -t targets < <(go test -run '^$' -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for t in "${targets[@]}"; do
		[[ -n $t ]] || continue
		n=$((n + 1))
		echo "== fuzz $pkg $t ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"; then
			failed=$((failed + 1))
		fi
	done
done
echo "fuzz: $n targets, $failed failed"
((failed == 0))
