# Run by a Linux dom0 with the Xen tools (linux.xen_tools): the Xen devices its modules
# make, xenfs, what xenctl sees of the hypervisor, and an event-channel ping-pong inside
# dom0 (`self`: a loopback channel): pong in the background prints its port, ping binds
# to it; then one with the domU (domain 1), whose port dom0 finds with EVTCHNOP_status.
for d in /dev/xen/privcmd /dev/xen/hypercall /dev/xen/evtchn /dev/xen/gntdev; do
    if [ -c "$d" ]; then echo "PASS device: $d"; else echo "FAIL device: $d missing"; fi
done
if grep -q '^xenfs /proc/xen xenfs ' /proc/mounts; then
    echo "PASS xenfs: mounted at /proc/xen"
else
    echo "FAIL xenfs: not mounted at /proc/xen"
fi
xenctl version || echo "FAIL xenctl version: exit status $?"
xenctl domains || echo "FAIL xenctl domains: exit status $?"
xenctl evtchn-pong self 100 > /tmp/pong.out 2>&1 &
pong=$!
port=""
for _ in $(seq 1 50); do
    port=$(sed -n 's/^pong: port \([0-9]*\) for domain .*/\1/p' /tmp/pong.out)
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "FAIL evtchn: evtchn-pong printed no port"
    kill "$pong"
elif xenctl evtchn-ping self "$port" 100; then
    echo "PASS evtchn: 100 round trips through port $port"
else
    echo "FAIL evtchn: evtchn-ping exit status $?"
    kill "$pong"
fi
wait "$pong"
cat /tmp/pong.out
caps=$(cat /proc/xen/capabilities 2>&1)
if [ "$caps" = control_d ]; then echo "PASS capabilities: $caps"; else echo "FAIL capabilities: '$caps'"; fi
# Between domains: the domU's evtchn-pong leaves a port unbound for dom0; find it, ping it.
if xenctl evtchn-ping 1 find 100; then
    echo "PASS evtchn: 100 round trips with domain 1"
else
    echo "FAIL evtchn: evtchn-ping with domain 1: exit status $?"
fi
# A foreign mapping: the domU's first RAM frame (0x4000_0000, its kernel Image) through
# privcmd's mmapbatch; the arm64 Image magic "ARM\x64" is at offset 0x38.
xenctl peek 1 0x40000 0x38 4 || echo "FAIL peek: exit status $?"
