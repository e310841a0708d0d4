# libfindity: the two commands a newcomer needs are `make demo` and `make test`.
# Everything else here is a building block of those two.

CARGO    ?= cargo
CC       ?= gcc
BUILD    := build
DEBUG    := target/debug
CFLAGS   ?= -std=c11 -O1 -g -Wall -Wextra -Werror -pthread
EMULATOR := $(DEBUG)/findity-emulator

.PHONY: bench-fleet all build release test demo test-rust test-store test-c test-c-valgrind test-python test-csharp wheel nuget test-nuget test-readme tools check-header check-deps lint mutants soak fuzz bench scale bench-store clean

all: build

## Debug build of the library and the emulator (what the tests use).
build:
	$(CARGO) build --workspace

## Release build of the shipped library (LTO, stripped). Only the cdylib, built exactly as the
## Python wheel's setuptools-rust builds it (cargo rustc --lib --crate-type cdylib), so the two
## share one build in target/release instead of compiling it twice.
release:
	$(CARGO) rustc --release -p findity --lib --crate-type cdylib

## Every test suite, installing what a fresh machine lacks.
test:
	bash scripts/test.sh

## Organization and user tokens from C, against the emulator.
demo:
	bash scripts/demo.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The committed header must be what cbindgen generates from src/ffi.rs.
check-header: build
	@git diff --exit-code -- include/findity.h || { echo "include/findity.h is out of date: commit the regenerated header"; exit 1; }

## The shipped (release) .so links no OpenSSL: TLS is rustls, trust roots are built in or from
## ca_file. A cargo failure fails the check (it never counts as "openssl-sys not found").
check-deps: release
	@mkdir -p $(BUILD)
	@$(CARGO) tree -p findity -e normal --prefix none --format '{p}' > $(BUILD)/deps.txt || { echo "cargo tree failed"; exit 1; }
	@[ -s $(BUILD)/deps.txt ] || { echo "cargo tree listed nothing"; exit 1; }
	@! grep -E '^(openssl|openssl-sys|native-tls) ' $(BUILD)/deps.txt || { echo "OpenSSL is in the dependency tree"; exit 1; }
	@readelf -d target/release/libfindity.so > $(BUILD)/needed.txt || { echo "no target/release/libfindity.so"; exit 1; }
	@! grep -E 'NEEDED.*(ssl|crypto)' $(BUILD)/needed.txt || { echo "libfindity.so links OpenSSL"; exit 1; }
	@echo "no OpenSSL: $$(wc -l < $(BUILD)/deps.txt) crates, none of them OpenSSL; release libfindity.so needs $$(grep -c NEEDED $(BUILD)/needed.txt) shared libraries, none of them OpenSSL"

test-rust:
	$(CARGO) test --workspace

## The shared cache across real processes: the file store, and the Redis store against a real
## redis-server (installed when missing, started on a free port, stopped afterwards).
test-store: build
	bash scripts/redis.sh $(CARGO) test --test store_file --test store_redis

$(BUILD)/test_findity: tests/c/test_findity.c tests/c/emu.h include/findity.h build
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -Iinclude tests/c/test_findity.c -L$(DEBUG) -lfindity -Wl,-rpath,$(CURDIR)/$(DEBUG) -o $@

test-c: $(BUILD)/test_findity
	FINDITY_EMULATOR=$(EMULATOR) $(BUILD)/test_findity

## The C suite under memcheck: zero errors and no definite leaks, or it fails. Every test runs;
## only wall-clock bounds are relaxed (printed as "relaxed under valgrind", since valgrind is
## ~20x slower); see tests/c/valgrind.supp for ring's asm.
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite --child-silent-after-fork=yes --suppressions=tests/c/valgrind.supp
test-c-valgrind: $(BUILD)/test_findity
	@command -v valgrind >/dev/null || { . scripts/common.sh; apt_install valgrind; }
	FINDITY_TEST_NO_TIMING=1 FINDITY_EMULATOR=$(EMULATOR) $(VALGRIND) $(BUILD)/test_findity

## The Python suite on the installed wheel (builds it: the release library, reused from target/release).
test-python: build
	FINDITY_EMULATOR=$(CURDIR)/$(EMULATOR) bash scripts/test-python.sh

## build/nuget/Findity.Auth.VERSION.nupkg with Mono's mcs and Debian's nuget: lib/net461 +
## runtimes/linux-x64/native/libfindity.so (release). `dotnet pack` uses the .csproj instead.
nuget: release
	bash scripts/nuget.sh

## The .nupkg installed from a local folder feed into a consumer built with mcs, run on Mono.
test-nuget: build release
	FINDITY_EMULATOR=$(CURDIR)/$(EMULATOR) bash scripts/test-nuget.sh

## Every block of README.md run as written (C, Python, C#, findity-token, install, the emulator)
## in one shell session against the emulator, the rest checked for syntax; the wheel's and the
## nupkg's licence files. The README's own lines build what they need (make release tools, ...).
test-readme:
	bash scripts/test-readme.sh

## bindings/python as a manylinux wheel in build/wheelhouse/ (release libfindity inside).
wheel:
	bash scripts/build-wheel.sh

test-csharp: build
	FINDITY_LIB_DIR=$(CURDIR)/$(DEBUG) FINDITY_EMULATOR=$(CURDIR)/$(EMULATOR) bash scripts/test-csharp.sh

## 60 s soak (the test command runs a 5 s one): 8 threads, 2 s tokens, faults on every Nth request.
soak:
	FINDITY_SOAK_SECS=60 $(CARGO) test --test soak -- --nocapture

## Fuzz each target for FUZZ_SECS (60) seconds on stable Rust (no sanitizer: the checks in
## fuzz/checks.rs assert the properties, and canaries catch writes past caller buffers).
## A crash lands in fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/, and
## `cargo test --test fuzz_regressions` replays it forever. Longer: make fuzz FUZZ_SECS=3600.
FUZZ_SECS ?= 60
FUZZ_TARGETS := token_response base_url ffi_args
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && cp -n regressions/$$t/* corpus/$$t/ 2>/dev/null; \
	  $(CARGO) fuzz run --sanitizer none -O $$t corpus/$$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=2048 || exit 1; \
	done

## Mutation testing (not part of the test command): each mutation in tests/mutants/mutations.toml
## is applied to a scratch copy (build/mutants/tree) and the suites run until one fails. Writes
## the score into TESTING.md. One mutation: make mutants MUTANTS_ARGS="--only hard-margin-halved".
mutants:
	python3 scripts/mutants.py $(MUTANTS_ARGS)

## Many keys against a throttling emulator (not part of the test command): writes its section
## of BENCHMARKS.md. About 1 minute after the release build.
scale:
	bash bench/scale.sh

## Benchmarks (not part of the test command): writes BENCHMARKS.md.
bench:
	bash bench/run.sh

## The shared cache's figures across processes (file store and Redis): a section of BENCHMARKS.md.
bench-store:
	bash bench/store.sh

## The fleet's throttle across processes (file store and Redis, 429 storm): a section of BENCHMARKS.md.
bench-fleet:
	bash bench/fleet.sh

clean:
	$(CARGO) clean
	rm -rf $(BUILD)

include mk/install.mk
include mk/bindings.mk
include mk/native.mk
include mk/windows.mk
