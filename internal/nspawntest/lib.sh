# Sourced by e2e.sh and deb.sh inside the container (/root/lib.sh).

# no_privs_of PID: every thread of PID has no capability in any set and
# no_new_privs set.
no_privs_of() {
	p=$1; [ "$p" -gt 0 ] 2>/dev/null || return 1
	n=0
	for s in /proc/$p/task/*/status; do
		n=$((n + 1))
		awk '
			/^Cap(Eff|Prm|Bnd|Amb):/ { if ($2 !~ /^0+$/) { print FILENAME ": " $0; bad = 1 } }
			/^NoNewPrivs:/ { nnp = $2 }
			END { if (nnp != 1) { print FILENAME ": NoNewPrivs " nnp; bad = 1 }; exit bad }' "$s" || return 1
	done
	echo "     $n threads: CapEff CapPrm CapBnd CapAmb 0, NoNewPrivs 1"
	[ "$n" -gt 0 ]
}
