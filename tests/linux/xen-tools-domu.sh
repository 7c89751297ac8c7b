# Run by a Xen-aware Linux domU with the Xen tools (linux.xen_tools): its console is the
# Xen console ring (hvc0), it sees the hypervisor as Xen but is not the control domain,
# and it answers dom0's event-channel pings: `evtchn-pong 0` leaves a port unbound for
# dom0, which finds it (`evtchn-ping 1 find`). The privcmd device is not used here:
# without xenstore, Linux 6.1's privcmd blocks opens in a domU until xenstore names the
# domain it may act on.
t=$(cat /sys/hypervisor/type 2>&1)
if [ "$t" = xen ]; then echo "PASS domU hypervisor type: $t"; else echo "FAIL domU hypervisor type: '$t'"; fi
c=$(cat /sys/class/tty/console/active 2>&1)
case "$c" in
    *hvc0*) echo "PASS domU console: $c" ;;
    *) echo "FAIL domU console: '$c'" ;;
esac
# Without xenstore Linux's xenbus gives up in a domU, and with it goes the /proc/xen
# mount point; xenfs mounts anywhere else.
mkdir -p /tmp/xenfs
if mount -t xenfs xenfs /tmp/xenfs; then
    caps=$(cat /tmp/xenfs/capabilities 2>&1)
    if [ -z "$caps" ]; then echo "PASS domU capabilities: none"; else echo "FAIL domU capabilities: '$caps'"; fi
else
    echo "FAIL domU xenfs: mount failed"
fi
if xenctl evtchn-pong 0 100; then
    echo "PASS domU pong"
else
    echo "FAIL domU pong: exit status $?"
fi
