# Run by a domU Linux's /init beside dom0: it says who it is and how many CPUs it has,
# then /init powers it off (the domU only; dom0 carries on).
echo "domU banner: $(uname -s) $(uname -r) on $(uname -m)"
echo "domU nproc: $(nproc)"
