# A line typed on the console reaches dom0's hvc0 (console_io read), announced with
# VIRQ_CONSOLE (its interrupt count grows); then dom0 reboots at once: a Xen dom0's
# reboot (SCHEDOP_shutdown, reason reboot) is the machine's.
virq_count() {
    grep hvc_console /proc/interrupts |
        awk '{ n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n }'
}
before=$(virq_count)
echo "dom0: type a line"
read -r line
echo "dom0 read: $line"
after=$(virq_count)
if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; then
    echo "PASS VIRQ_CONSOLE: $before -> $after interrupts"
else
    echo "FAIL VIRQ_CONSOLE: '$before' -> '$after' ($(grep -i -e virq -e hvc /proc/interrupts))"
fi
echo "dom0 reboots"
reboot -f
sleep 10
echo "FAIL reboot -f returned"
