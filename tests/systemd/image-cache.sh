#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build (once per machine) and print the path of a cached test rootfs.
#
#   image-cache.sh host|guest
#
# The cache key is the sha256 of the recipe text below, so changing a recipe
# builds a new image and never reuses a stale one.  Concurrent callers are
# serialised with flock; the image is built in a temp dir next to the final
# one and renamed into place, so a half-built image is never visible.
set -euo pipefail

CACHE_ROOT="${MM_IMAGE_CACHE:-/var/cache/machinemgr/images}"
MIRROR="${MM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# The recipe is data (hashed), not just code: bump "recipe-version" to force a rebuild.
recipe_host() {
        cat <<RECIPE
recipe-version: 1
kind: host
suite: bookworm
variant: minbase
mirror: $MIRROR
include: systemd,systemd-sysv,dbus,systemd-container,openssh-server,openssh-client,libseccomp2,libnl-3-200,libnl-route-3-200,libcap2,libmount1,busybox-static,procps,iproute2,jq,python3,util-linux,libglib2.0-bin
RECIPE
}

recipe_guest() {
        cat <<RECIPE
recipe-version: 1
kind: guest
suite: bookworm
variant: minbase
mirror: $MIRROR
include: systemd,systemd-sysv,dbus
RECIPE
}

# Print one field of a recipe.
recipe_field() {
        local recipe="$1" field="$2"
        sed -n "s/^${field}: //p" <<<"$recipe"
}

# Tweak a fresh rootfs so it boots quickly and quietly in a container.
customize_rootfs() {
        local root="$1" kind="$2"
        # No getty/console login fighting our console log; nothing waits on a network.
        rm -f "$root"/etc/systemd/system/getty.target.wants/* || true
        ln -sf /dev/null "$root/etc/systemd/system/systemd-networkd-wait-online.service"
        # An empty machine-id lets nspawn/systemd generate one per boot.
        : >"$root/etc/machine-id"
        if [[ "$kind" == host ]]; then
                # ssh on loopback for `machinemgr -H root@127.0.0.1`; keys are set up per run.
                mkdir -p "$root/root/.ssh"
                chmod 700 "$root/root/.ssh"
                printf 'PermitRootLogin prohibit-password\nUseDNS no\n' \
                        >"$root/etc/ssh/sshd_config.d/machinemgr-test.conf"
        fi
}

build_image() {
        local kind="$1" recipe="$2" final="$3"
        local tmp="$final.tmp.$$"
        # shellcheck disable=SC2064 # expand now: the path is fixed
        trap "rm -rf '$tmp'" EXIT
        rm -rf "$tmp"
        mkdir -p "$tmp"
        mmdebstrap --variant="$(recipe_field "$recipe" variant)" \
                --include="$(recipe_field "$recipe" include)" \
                "$(recipe_field "$recipe" suite)" "$tmp" "$(recipe_field "$recipe" mirror)" >&2
        customize_rootfs "$tmp" "$kind"
        printf '%s\n' "$recipe" >"$tmp/.machinemgr-recipe"
        mv -T "$tmp" "$final"
        trap - EXIT
}

main() {
        local kind="${1:?usage: image-cache.sh host|guest}"
        local recipe
        case "$kind" in
        host) recipe="$(recipe_host)" ;;
        guest) recipe="$(recipe_guest)" ;;
        *) echo "unknown image kind: $kind" >&2; exit 2 ;;
        esac
        local hash
        hash="$(printf '%s\n' "$recipe" | sha256sum | cut -d' ' -f1)"
        local final="$CACHE_ROOT/$hash"
        mkdir -p "$CACHE_ROOT"
        if [[ ! -d "$final" ]]; then
                # One builder at a time; whoever waited re-checks before building.
                exec 9>"$CACHE_ROOT/.lock-$hash"
                flock 9
                if [[ ! -d "$final" ]]; then
                        echo "image-cache: building $kind image $hash" >&2
                        build_image "$kind" "$recipe" "$final"
                fi
                exec 9>&-
        fi
        printf '%s\n' "$final"
}

# One line, parsed whole before it runs: editing this file during a run is safe.
main "$@"; exit $?
