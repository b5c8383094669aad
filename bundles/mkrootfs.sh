#!/bin/sh
# mkrootfs.sh DIR — build a minimal busybox root filesystem in DIR.
# Needs the statically linked busybox from Debian's busybox-static package:
# the rootfs then has no library dependencies. Nothing here is committed.
set -eu
dest=${1:?usage: mkrootfs.sh DIR}
bb=$(command -v busybox || true)
for cand in /bin/busybox /usr/bin/busybox "$bb"; do
  if [ -n "$cand" ] && [ -x "$cand" ] && ! ldd "$cand" >/dev/null 2>&1; then
    bb=$cand; break
  fi
  bb=
done
if [ -z "$bb" ]; then
  echo "mkrootfs.sh: a statically linked busybox is needed (apt-get install busybox-static)" >&2
  exit 1
fi
mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin etc proc sys dev tmp root home usr/bin usr/sbin var/tmp
cp "$bb" bin/busybox
# one symlink per applet, pointing at /bin/busybox inside the container
for applet in $(bin/busybox --list); do
  [ "$applet" = busybox ] && continue
  [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
chmod 1777 tmp var/tmp
cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > etc/group <<'G'
root:x:0:
tty:x:5:
nogroup:x:65534:
G
echo "rootfs ready: $dest ($(bin/busybox | head -1))"
