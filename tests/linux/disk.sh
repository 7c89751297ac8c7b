# Run by the initramfs's /init (busybox sh) on the stock kernel in a case with
# `linux = { disk = true, ... }`: xtask attached a fresh FAT image as a virtio-blk disk
# (xtask/src/linux/disk.rs) and /init loaded the case's modules (virtio_mmio, virtio_blk,
# vfat and the code pages FAT mounts with by default). The case checks the PASS / FAIL
# lines; after the run xtask reads the image back on the host and checks WRITTEN.TXT.

# The MD5 of KNOWN.BIN as xtask writes it (xtask/src/linux/disk.rs, KNOWN_MD5).
KNOWN_MD5=c9ad512f22d06ff7f58dabf4f673fb94
dev=/dev/vda
mnt=/mnt/disk

# devtmpfs (mounted by /init) makes the node when virtio_blk has probed the disk.
i=0
while [ ! -b "$dev" ] && [ "$i" -lt 10 ]; do
    sleep 1
    i=$((i + 1))
done
if [ ! -b "$dev" ]; then
    echo "FAIL disk: no $dev; block devices: $(ls /sys/block | tr '\n' ' ')"
    exit 1
fi
echo "PASS disk: $dev is a block device of $(cat /sys/block/vda/size) sectors"
echo "disk: $(readlink -f /sys/block/vda)"

mkdir -p "$mnt"
if mount -t vfat "$dev" "$mnt"; then
    echo "PASS disk: mounted $dev (vfat)"
else
    echo "FAIL disk: cannot mount $dev as vfat"
    exit 1
fi
echo "disk: $(ls "$mnt" | tr '\n' ' ')"

sum=$(md5sum "$mnt/KNOWN.BIN" | cut -d ' ' -f 1)
if [ "$sum" = "$KNOWN_MD5" ]; then
    echo "PASS disk: known file checksum $sum"
else
    echo "FAIL disk: known file checksum '$sum', expected $KNOWN_MD5"
fi

# Write a file, flush it, unmount, drop the caches, mount again and read it back.
seq 1 20000 > "$mnt/WRITTEN.TXT"
want=$(seq 1 20000 | md5sum | cut -d ' ' -f 1)
sync
if umount "$mnt"; then
    echo "PASS disk: unmounted after writing"
else
    echo "FAIL disk: cannot unmount after writing"
fi
echo 3 > /proc/sys/vm/drop_caches
if mount -t vfat "$dev" "$mnt"; then
    echo "PASS disk: mounted again"
else
    echo "FAIL disk: cannot mount $dev again"
    exit 1
fi
got=$(md5sum "$mnt/WRITTEN.TXT" | cut -d ' ' -f 1)
if [ "$got" = "$want" ]; then
    echo "PASS disk: written file read back after remount, checksum $got"
else
    echo "FAIL disk: written file checksum '$got' after remount, expected $want"
fi
sum=$(md5sum "$mnt/KNOWN.BIN" | cut -d ' ' -f 1)
if [ "$sum" = "$KNOWN_MD5" ]; then
    echo "PASS disk: known file unchanged after remount"
else
    echo "FAIL disk: known file checksum '$sum' after remount, expected $KNOWN_MD5"
fi
if umount "$mnt"; then
    echo "PASS disk: unmounted"
else
    echo "FAIL disk: cannot unmount"
fi

# The FAT driver must not have complained (a dirty or damaged volume says so).
bad=$(dmesg | grep -E 'FAT-fs.*(error|not properly unmounted|corrupt)|BUG|WARNING|Oops' | head -n 5)
if [ -z "$bad" ]; then
    echo "PASS disk: no FAT-fs errors, BUG, WARNING or Oops in the kernel log"
else
    echo "FAIL disk: kernel log:"
    echo "$bad"
fi
echo "disk test done"
