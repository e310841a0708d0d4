# Installation, the findity-token command-line tool, and the tests of both; included by the
# Makefile (which defines CARGO, CC, CFLAGS, BUILD, DEBUG and the release target).
#
#   make install                          # /usr/local: lib/, include/, lib/pkgconfig/, bin/
#   make install PREFIX=$HOME/.local      # no root needed
#   make install DESTDIR=/tmp/stage PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu   # packaging
#   make uninstall PREFIX=...             # the same variables as the install
#
# Installed: lib/libfindity.so.MAJOR.MINOR.PATCH (soname libfindity.so.MAJOR, see build.rs),
# the symlinks libfindity.so.MAJOR -> it and libfindity.so -> libfindity.so.MAJOR (for -lfindity),
# include/findity.h, lib/pkgconfig/findity.pc and bin/findity-token. Always from the release build.

# Include it at the end of the Makefile; even so, nothing here becomes the default goal.
findity_default_goal := $(.DEFAULT_GOAL)
BUILD ?= build
DEBUG ?= target/debug

PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL      ?= install
LDCONFIG     ?= ldconfig
RELEASE      := target/release

# The version is Cargo.toml's [package] version (the header's FINDITY_VERSION_* follow it).
FINDITY_VERSION := $(shell awk -F'"' '/^\[/ { p = ($$0 == "[package]") } p && /^version *=/ { print $$2; exit }' Cargo.toml)
FINDITY_MAJOR   := $(word 1,$(subst ., ,$(FINDITY_VERSION)))
FINDITY_SONAME  := libfindity.so.$(FINDITY_MAJOR)
FINDITY_REAL    := libfindity.so.$(FINDITY_VERSION)

# findity.pc says ${prefix}/lib rather than the absolute path when LIBDIR is under PREFIX.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# The installed findity-token finds libfindity.so.MAJOR in LIBDIR through its RUNPATH, so it
# works before (or without) ldconfig; none for the system's own library directories.
TOOL_RPATH  = $(if $(filter /lib /lib64 /usr/lib /usr/lib64 /lib/%-linux-gnu /usr/lib/%-linux-gnu,$(LIBDIR)),,-Wl,-rpath,$(LIBDIR))
TOOL_CFLAGS ?= -std=c11 -O2 -Wall -Wextra -pthread

.PHONY: install uninstall tools test-install test-examples-c

## findity-token in the checkout: the release library (what is installed and shipped), RUNPATH
## into target/release; `tools` also builds the emulator (target/debug/findity-emulator).
$(BUILD)/findity-token: tools/findity-token.c include/findity.h release
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -Iinclude tools/findity-token.c -L$(RELEASE) -lfindity -Wl,-rpath,$(CURDIR)/$(RELEASE) -o $@

tools: build $(BUILD)/findity-token

## findity-token as installed: release library, RUNPATH LIBDIR (rebuilt on every install, since
## LIBDIR may differ from the last one).
$(BUILD)/release/findity-token: tools/findity-token.c include/findity.h release
	@mkdir -p $(BUILD)/release
	$(CC) $(TOOL_CFLAGS) -Iinclude tools/findity-token.c -L$(RELEASE) -lfindity $(TOOL_RPATH) -o $@

install: release $(BUILD)/release/findity-token
	@test -n "$(FINDITY_MAJOR)" || { echo "install: no version found in Cargo.toml" >&2; exit 1; }
	@mkdir -p $(BUILD)/release
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PC_LIBDIR)|' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(FINDITY_VERSION)|' tools/findity.pc.in > $(BUILD)/release/findity.pc
	$(INSTALL) -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(PKGCONFIGDIR)" "$(DESTDIR)$(BINDIR)"
	$(INSTALL) -m 0755 $(RELEASE)/libfindity.so "$(DESTDIR)$(LIBDIR)/$(FINDITY_REAL)"
	ln -sfn $(FINDITY_REAL) "$(DESTDIR)$(LIBDIR)/$(FINDITY_SONAME)"
	ln -sfn $(FINDITY_SONAME) "$(DESTDIR)$(LIBDIR)/libfindity.so"
	$(INSTALL) -m 0644 include/findity.h "$(DESTDIR)$(INCLUDEDIR)/findity.h"
	$(INSTALL) -m 0644 $(BUILD)/release/findity.pc "$(DESTDIR)$(PKGCONFIGDIR)/findity.pc"
	$(INSTALL) -m 0755 $(BUILD)/release/findity-token "$(DESTDIR)$(BINDIR)/findity-token"
# Refresh the loader cache for a real (not staged) install as root; harmless elsewhere.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then $(LDCONFIG) || true; fi
	@echo "installed libfindity $(FINDITY_VERSION) into $(DESTDIR)$(PREFIX)"

## Removes exactly what `make install` (with the same variables) put; directories stay. A symlink
## goes only if it points where install pointed it and is left dangling: another installed version
## with the same MAJOR keeps its libfindity.so.MAJOR and libfindity.so.
uninstall:
	rm -f "$(DESTDIR)$(LIBDIR)/$(FINDITY_REAL)" "$(DESTDIR)$(INCLUDEDIR)/findity.h" \
	      "$(DESTDIR)$(PKGCONFIGDIR)/findity.pc" "$(DESTDIR)$(BINDIR)/findity-token"
	@for l in "$(FINDITY_SONAME):$(FINDITY_REAL)" "libfindity.so:$(FINDITY_SONAME)"; do \
	  f="$(DESTDIR)$(LIBDIR)/$${l%%:*}"; \
	  if [ -L "$$f" ] && [ ! -e "$$f" ] && [ "$$(readlink "$$f")" = "$${l#*:}" ]; then echo "rm -f $$f"; rm -f "$$f"; fi; \
	done
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then $(LDCONFIG) || true; fi

# The test scripts call make again for install/uninstall; this is the makefile to call.
FINDITY_MAKE = $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST))

## make install / uninstall into temporary prefixes (also DESTDIR, LIBDIR), the C examples built
## with `pkg-config --cflags --libs findity` alone and with CMake, findity-token's contract; all
## against the emulator. Builds the release library (~2 min the first time).
test-install: build
	FINDITY_MAKE="$(FINDITY_MAKE)" bash tests/install/test_install.sh

$(BUILD)/examples/connector: examples/c/connector.c include/findity.h build
	@mkdir -p $(BUILD)/examples
	$(CC) $(CFLAGS) -Iinclude examples/c/connector.c -L$(DEBUG) -lfindity -Wl,-rpath,$(CURDIR)/$(DEBUG) -o $@

$(BUILD)/examples/demo: examples/c/demo.c include/findity.h build
	@mkdir -p $(BUILD)/examples
	$(CC) $(CFLAGS) -Iinclude examples/c/demo.c -L$(DEBUG) -lfindity -Wl,-rpath,$(CURDIR)/$(DEBUG) -o $@

## examples/c/ against a fresh emulator: connector.c (user and organization API calls, a 401
## answered by invalidate + one retry) and demo.c.
test-examples-c: $(BUILD)/examples/connector $(BUILD)/examples/demo
	bash tests/install/test_examples_c.sh $(BUILD)/examples/connector $(BUILD)/examples/demo

.DEFAULT_GOAL := $(findity_default_goal)
