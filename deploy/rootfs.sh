#!/bin/sh
# Assembles what the scratch image contains, so the Dockerfile's builder stage and test/image.test.ts build
# exactly the same tree:
#
#   sh deploy/rootfs.sh BINARY OUT
#
#   OUT/rootfs/netflow2traces                  the binary
#   OUT/rootfs/<lib paths>                     every shared library `ldd BINARY` lists, and the ELF loader
#   OUT/rootfs/etc/ssl/certs/ca-certificates.crt   CA roots (OTLP over https; the Bun binary also has its own)
#   OUT/rootfs/etc/passwd, OUT/rootfs/etc/group    root and the numeric non-root user 65532 ("nonroot")
#   OUT/state/                                 empty; becomes /var/lib/netflow2traces owned by 65532
#
# Nothing else: no shell, no /tmp. The container runtime mounts /proc (the Bun runtime needs it) and
# provides /etc/hosts and /etc/resolv.conf.
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 BINARY OUT" >&2
  exit 2
fi
bin=$1
out=$2
rootfs=$out/rootfs
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

[ -f "$bin" ] || { echo "rootfs.sh: no binary at $bin" >&2; exit 1; }
[ -f "$ca" ] || { echo "rootfs.sh: no CA bundle at $ca (install ca-certificates)" >&2; exit 1; }

rm -rf "$rootfs" "$out/state"
mkdir -p "$rootfs/etc/ssl/certs" "$out/state"

cp "$bin" "$rootfs/netflow2traces"
chmod 0755 "$rootfs/netflow2traces"

# `ldd` lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
# linux-vdso has no file. Each library is copied (symlinks resolved) to the path the loader asks for.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ -n "$libs" ] || { echo "rootfs.sh: ldd found no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

cp -L "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' \
  >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/ssl/certs/ca-certificates.crt"

echo "rootfs.sh: $rootfs ($(du -sb "$rootfs" | cut -f1) bytes):"
(cd "$rootfs" && find . -type f | sort)
