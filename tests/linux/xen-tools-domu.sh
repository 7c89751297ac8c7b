# Run by a Linux domU with the Xen tools (linux.xen_tools): it sees the hypervisor but is
# not the control domain, so listing domains is refused.
xenctl version || echo "FAIL domU xenctl version: exit status $?"
if out=$(xenctl domains 2>&1); then
    echo "FAIL domU xenctl domains: a domU listed the domains"
    echo "$out"
else
    echo "domU domains refused: $out"
fi
