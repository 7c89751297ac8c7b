# Hands dom0's console to an interactive busybox shell; the case types commands into it
# (console input through the hypervisor to dom0's UART) and `exit` ends it.
echo "shell: interactive shell on the console"
setsid cttyhack sh -i
echo "shell: the interactive shell exited with status $?"
