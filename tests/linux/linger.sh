# Keeps dom0 up a while after its own checks, so a domU booted beside it has time to
# print its lines before dom0 powers the machine off.
sleep 12
echo "dom0 lingered"
