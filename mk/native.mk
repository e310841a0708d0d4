# Every Linux a connector runs on (issue 20): cross builds, their tests under emulation, one
# wheel per platform, and a compile-only check for macOS. Included at the end of the Makefile.
# Toolchains, the Debian 11 chroot and the cargo target directory of these builds live outside
# the clone, in $(FINDITY_NATIVE_CACHE) (default /var/cache/findity-native), and are reused.
#
#   make native        build/native/<rid>/ for linux-x64, linux-arm64 (glibc 2.17) and
#                      linux-musl-x64: libfindity.so, its soname link, findity.h,
#                      findity-token, SHA256SUMS; objdump -T checked (nothing above GLIBC_2.17)
#   make test-native   linux-arm64 under qemu-aarch64, linux-x64 in a Debian 11 chroot, musl
#                      with musl-gcc, against the emulator on the host (scripts/native/test.sh)
#   make wheels        build/wheelhouse/: manylinux2014 x86_64 and aarch64, musllinux_1_2 x86_64
#   make check-macos   cargo check for aarch64- and x86_64-apple-darwin (nothing linked)
#
# NATIVE_RIDS chooses the platforms of make native, e.g. make native NATIVE_RIDS=linux-arm64.
findity_native_goal := $(.DEFAULT_GOAL)
NATIVE_RIDS ?= linux-x64 linux-arm64 linux-musl-x64

.PHONY: native test-native wheels check-macos

native:
	bash scripts/native/build.sh $(NATIVE_RIDS)

# Every platform make native built (Windows too, when mk/windows.mk adds it to native).
wheels: native
	bash scripts/native/wheels.sh $(NATIVE_RIDS) $(WIN_RIDS)

test-native: native wheels
	bash scripts/native/test.sh

check-macos:
	bash scripts/native/check-macos.sh

.DEFAULT_GOAL := $(findity_native_goal)
