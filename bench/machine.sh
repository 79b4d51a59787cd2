# bench/machine.sh: sourced by bench/take.sh, bench/mount.sh and bench/floor.sh.
# machine_lines ROOT: the first lines of a results summary, the machine and the
# commit measured (each script adds its own tools after them).
machine_lines() {
	echo "date: $(date -Iseconds)"
	echo "commit: $(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo '?') (working tree may differ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel: $(uname -sr)"
	echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
}

# machine_idle MAX_SECONDS: returns 0 once the machine has been >= 90 % idle for 2 s in a row,
# 1 if it is still busy after MAX_SECONDS (a second a check)
machine_idle() {
	local waited=0 good=0 b0 i0 b1 i1
	while [ $waited -lt "$1" ]; do
		read -r b0 i0 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
		sleep 1
		read -r b1 i1 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
		waited=$((waited + 1))
		if [ $(((i1 - i0) * 10)) -ge $((((b1 - b0) + (i1 - i0)) * 9)) ]; then
			good=$((good + 1))
			[ $good -ge 2 ] && return 0
		else
			good=0
		fi
	done
	return 1
}
