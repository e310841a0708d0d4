# Windows x64 and x86 (issue 21): findity.dll and findity-token.exe built with mingw-w64 and
# Debian's rustc (-Z build-std), run under Wine. Included at the end of the Makefile, after
# mk/native.mk, whose targets it extends.
#
#   make native          also builds build/native/win-x64/ and win-x86/ (scripts/windows/build.sh):
#                        findity.dll, libfindity.dll.a, findity.def, findity.h,
#                        findity-token.exe, SHA256SUMS
#   make windows         only the Windows part of make native
#   make test-windows    under Wine (prefix in build/wine/<rid>): the C suite against the emulator
#                        on the host, smoke.c, findity-token.exe, 3 Wine processes sharing a file
#                        store (one killed mid-request), the Rust tests that spawn no Unix tools
#                        (scripts/windows/test.sh); also run by make test-native
#   make sign-windows    the Authenticode step with a throw-away certificate (scripts/windows/sign.sh)
#
# test-windows needs the wheels (one of its checks is the win wheels' DLL).
# WIN_RIDS chooses the platforms, e.g. make windows WIN_RIDS=win-x64.
findity_windows_goal := $(.DEFAULT_GOAL)
WIN_RIDS ?= win-x64 win-x86

.PHONY: windows test-windows sign-windows

windows:
	bash scripts/windows/build.sh $(WIN_RIDS)

native: windows

test-windows: windows wheels
	bash scripts/windows/test.sh $(WIN_RIDS)

test-native: test-windows

sign-windows: windows
	bash scripts/windows/sign.sh

.DEFAULT_GOAL := $(findity_windows_goal)
