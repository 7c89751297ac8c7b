# Reboots at once: a Xen dom0's reboot (SCHEDOP_shutdown, reason reboot) is the machine's.
echo "dom0 reboots"
reboot -f
sleep 10
echo "FAIL reboot -f returned"
