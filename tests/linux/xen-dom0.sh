# Run by a Xen-aware Linux dom0 (linux.xen): the kernel found Xen and runs as the initial
# domain, its console is hvc0 (console_io), and xenfs says it is the control domain.
if dmesg | grep -q 'Xen 4.17 support found'; then
    echo "PASS xen: $(dmesg | grep -o 'Xen 4.17 support found')"
else
    echo "FAIL xen: no 'Xen 4.17 support found' in the kernel log"
fi
t=$(cat /sys/hypervisor/type 2>&1)
if [ "$t" = xen ]; then echo "PASS hypervisor type: $t"; else echo "FAIL hypervisor type: '$t'"; fi
c=$(cat /sys/class/tty/console/active 2>&1)
case "$c" in
    *hvc0*) echo "PASS console: $c" ;;
    *) echo "FAIL console: '$c'" ;;
esac
