#!/bin/sh
# Run the command as the user maglevd, with CAP_NET_RAW and CAP_SYS_ADMIN as ambient
# capabilities when the container has them (docker run --cap-add ...), and never as root.
set -eu
if [ "$(id -u)" != 0 ]; then
	exec "$@"  # started with --user: run as given, without extra capabilities
fi
bounding=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
caps=""
has() { [ $(( 0x$bounding >> $1 & 1 )) = 1 ]; }
has 13 && caps="$caps,+net_raw"
has 21 && caps="$caps,+sys_admin"
caps=${caps#,}
if [ -n "$caps" ]; then
	exec setpriv --reuid maglevd --regid maglevd --init-groups \
		--inh-caps "$caps" --ambient-caps "$caps" --bounding-set "-all,$caps" -- "$@"
fi
exec setpriv --reuid maglevd --regid maglevd --init-groups --bounding-set -all -- "$@"
