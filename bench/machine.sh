# bench/machine.sh: sourced by bench/take.sh and bench/mount.sh.
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
