# Sourced by scripts/native/test.sh: a Debian 11 (bullseye, glibc 2.31) chroot to run the
# linux-x64 build in, made once with debootstrap under $NATIVE_CACHE/bullseye and reused.
# The mirror is the one this machine's apt uses (FINDITY_DEBIAN_MIRROR overrides it). Debian 11
# is past its support: when the mirror no longer serves it, need_bullseye says so and fails,
# and the caller skips (loudly) what needed it.

BULLSEYE="$NATIVE_CACHE/bullseye"

debian_mirror() {
    if [ -n "${FINDITY_DEBIAN_MIRROR:-}" ]; then echo "$FINDITY_DEBIAN_MIRROR"; return; fi
    local m
    m="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)"
    [ -n "$m" ] || m="$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)"
    echo "$m"
}

# need_bullseye: $BULLSEYE is a working chroot with python3 and python3-venv (or returns 1).
need_bullseye() {
    if [ -f "$BULLSEYE/.findity-complete" ] && chroot "$BULLSEYE" /usr/bin/python3 -c 'import venv' 2>/dev/null; then
        return 0
    fi
    need_debian_packages debootstrap
    local mirror
    mirror="$(debian_mirror)"
    [ -n "$mirror" ] || { echo "native: no Debian mirror found in /etc/apt (set FINDITY_DEBIAN_MIRROR)" >&2; return 1; }
    echo "native: debootstrap bullseye (Debian 11) into $BULLSEYE from this machine's Debian mirror"
    rm -rf "$BULLSEYE"
    if ! nice -n 15 debootstrap --variant=minbase --include=python3,python3-venv bullseye "$BULLSEYE" "$mirror" \
            >"$NATIVE_CACHE/debootstrap.log" 2>&1; then
        echo "native: debootstrap bullseye failed (the mirror may no longer serve Debian 11); last lines:" >&2
        tail -5 "$NATIVE_CACHE/debootstrap.log" >&2
        rm -rf "$BULLSEYE"
        return 1
    fi
    touch "$BULLSEYE/.findity-complete"
}

# in_bullseye CMD...: run CMD in the chroot with /proc and /dev/shm (POSIX semaphores, which
# Python's multiprocessing needs) mounted for the duration.
in_bullseye() {
    local rc=0
    mountpoint -q "$BULLSEYE/proc" || mount -t proc proc "$BULLSEYE/proc"
    mkdir -p "$BULLSEYE/dev/shm"
    mountpoint -q "$BULLSEYE/dev/shm" || mount -t tmpfs -o mode=1777 shm "$BULLSEYE/dev/shm"
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$(PATH=/usr/sbin:/sbin:$PATH command -v chroot)" "$BULLSEYE" "$@" || rc=$?
    umount "$BULLSEYE/dev/shm" 2>/dev/null || true
    umount "$BULLSEYE/proc" 2>/dev/null || true
    return $rc
}
