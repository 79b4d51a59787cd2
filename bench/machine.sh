# bench/machine.sh: sourced by bench/take.sh, bench/mount.sh, bench/floor.sh,
# bench/foreign.sh and bench/many.sh.
# machine_lines ROOT: the first lines of a results summary, the machine and the
# commit measured (each script adds its own tools after them).
machine_lines() {
	echo "date: $(date -Iseconds)"
	echo "commit: $(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo '?') (working tree may differ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel: $(uname -sr)"
	echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	# an idle CPU that halts at once (no polling) must be woken by the next request or reply:
	# on a VM that doubles a FUSE round trip (bench/mount-results.md, session 17)
	local hp=/sys/module/haltpoll/parameters/guest_halt_poll_ns
	local drv=/sys/devices/system/cpu/cpuidle/current_driver
	echo "cpuidle: $(cat $drv 2>/dev/null || echo '?')$(
		[ -r $hp ] && echo ", guest_halt_poll_ns=$(cat $hp)")"
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

# quiet: wait for an idle machine (QUIET_WAIT seconds at most); if it stays busy, say so
# and note it in RES/noisy.txt (the script's log, RES and QUIET_WAIT)
quiet() { machine_idle "$QUIET_WAIT" || { log "machine busy; measuring anyway"; echo busy >>"$RES/noisy.txt"; }; }

# release_build ROOT TARGET...: build the targets in ROOT/build-bench2 (release), set up once
release_build() {
	local root=$1
	shift
	[ -d "$root/build-bench2" ] || meson setup "$root/build-bench2" "$root" --buildtype=release >/dev/null
	ninja -C "$root/build-bench2" "$@" >/dev/null
}

# tsec LIMIT CMD: run the bash command, print its wall seconds, or ">LIMIT" if it hit the cap
tsec() {
	local limit=$1 cmd=$2 t0 t1 rc=0
	t0=$EPOCHREALTIME
	timeout -k 5 "$limit" bash -c "$cmd" || rc=$?
	t1=$EPOCHREALTIME
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo ">$limit"
	elif [ $rc != 0 ]; then
		die "'$cmd' failed ($rc)"
	else
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
	fi
}

# row ROUND PEER METRIC VALUE [NOTE]: a line of RES/runs.tsv, shown on stderr
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" | tee -a "$RES/runs.tsv" >&2; }
