# Run by the initramfs's /init (busybox sh) on the stock kernel; the boot case checks the
# lines it prints ("PASS ..." / "FAIL ..."), and /init powers off afterwards.

echo "nproc: $(nproc)"

# The arch timer's line of /proc/interrupts, read twice: its per-CPU counts must grow.
timer_total() {
    grep arch_timer /proc/interrupts | head -n 1 |
        awk '{ n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n }'
}
echo "timer line: $(grep arch_timer /proc/interrupts | head -n 1)"
first=$(timer_total)
sleep 1
echo "timer line: $(grep arch_timer /proc/interrupts | head -n 1)"
second=$(timer_total)
if [ -n "$first" ] && [ -n "$second" ] && [ "$second" -gt "$first" ]; then
    echo "PASS timer: $first -> $second interrupts"
else
    echo "FAIL timer: '$first' -> '$second' interrupts"
fi

# The kernel log must be free of warnings and crashes.
bad=$(dmesg | grep -E 'BUG|WARNING|Oops|Call trace' | head -n 5)
if [ -z "$bad" ]; then
    echo "PASS dmesg: no BUG, WARNING, Oops or Call trace"
else
    echo "FAIL dmesg:"
    echo "$bad"
fi

# /init loaded the modules the case lists (/etc/modules) with modprobe, from the
# initramfs and the modules.dep xtask made for them: each of those and every module they
# need (all of modules.dep) must show in /sys/module.
dep="/lib/modules/$(uname -r)/modules.dep"
if [ -f "$dep" ]; then
    for path in $(cut -d: -f1 "$dep"); do
        m=$(basename "$path" .ko | tr - _)
        if [ -d "/sys/module/$m" ]; then
            echo "PASS module $m loaded"
        else
            echo "FAIL module $m not loaded"
        fi
    done
fi
echo "lsmod: $(lsmod | awk 'NR > 1 { printf "%s ", $1 }')"
echo "linux test done"
