# Run after basic.sh by dom0 on QEMU's raspi4b (the Raspberry Pi firmware's own device
# tree): checks that dom0 sees the board, that its console is the mini UART the hypervisor
# emulates, and that the Pi's devices passed through to it work (MMIO and interrupts).

model=$(tr -d '\000' < /proc/device-tree/model)
case "$model" in
    "Raspberry Pi 4"*) echo "PASS model: $model" ;;
    *) echo "FAIL model: '$model'" ;;
esac

# The console the command line names: ttyS1, the 8250 driver's mini UART (the tree's
# serial1) the hypervisor emulates; or hvc0 for a Xen-aware dom0.
want=$(sed -n 's/.*console=\([^ ,]*\).*/\1/p' /proc/cmdline)
if [ -n "$want" ] && grep -q "^$want " /proc/consoles; then
    echo "PASS console: $want ($(grep "^$want " /proc/consoles | tr -s ' '))"
else
    echo "FAIL console: want '$want', have $(cat /proc/consoles)"
fi

# The VideoCore mailbox, passed through: the firmware driver's request went out by MMIO
# and its answer came back as the mailbox's interrupt (a forwarded SPI).
if dmesg | grep -q 'raspberrypi-firmware soc:firmware: Attached to firmware'; then
    echo "PASS firmware mailbox: $(dmesg | grep -o 'Attached to firmware.*')"
else
    echo "FAIL firmware mailbox: no 'Attached to firmware' in the kernel log"
fi
mbox=$(grep 'fe00b880.mailbox' /proc/interrupts |
    awk '{ n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n }')
if [ -n "$mbox" ] && [ "$mbox" -gt 0 ]; then
    echo "PASS mailbox interrupts: $mbox"
else
    echo "FAIL mailbox interrupts: '$mbox' ($(grep mailbox /proc/interrupts))"
fi

# The Pi's own PL011 (serial0, Bluetooth's UART on a board) is dom0's, passed through:
# its driver read the PrimeCell ID from the real registers. (With the Bluetooth child node
# the port is a serdev controller, so no /dev/ttyAMA0 appears.)
if dmesg | grep -q 'fe201000.serial: ttyAMA0 at MMIO 0xfe201000 .* is a PL011'; then
    echo "PASS pl011: ttyAMA0 probed"
else
    echo "FAIL pl011: $(dmesg | grep -i pl011 | head -n 3)"
fi
echo "raspi4b checks done"
