# mdmgw: build, run, test, fuzz and bench. `make help` lists the targets.
#
# Three flavours share the rules below through BUILD and FLAVOUR:
#   build/plain  the product (gcc, -O2)
#   build/asan   the same sources under ASan+UBSan, for the test suite
#   build/fuzz   clang with libFuzzer, for the fuzz targets

SHELL := /bin/bash
CC ?= cc
PYTHON ?= python3
FLAVOUR ?= plain
BUILD ?= build/$(FLAVOUR)

PKGS := libmicrohttpd jansson libcurl expat libcrypto libmemcached
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev \
	libssl-dev libmemcached-dev libcmocka-dev libexpat1-dev clang libclang-rt-14-dev \
	valgrind wrk memcached openssl curl python3 procps freeradius freeradius-utils

WARN_COMMON := -std=c11 -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 -Wvla
# gcc's truncation warning fires on every deliberate snprintf bound; clang does not know it.
WARN := $(WARN_COMMON) $(if $(filter fuzz,$(FLAVOUR)),,-Wno-format-truncation)
CFLAGS_plain := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS_asan := -fsanitize=address,undefined
CFLAGS_fuzz := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link \
	-fno-sanitize-recover=all
LDFLAGS_fuzz := -fsanitize=address,undefined

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARN) $(CFLAGS_$(FLAVOUR)) $(PKG_CFLAGS) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(EXTRA_CFLAGS)
LIBS = $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(wildcard core/*.c cache/*.c adapters/*.c) $(filter-out gateway/app/main.c,$(wildcard gateway/*/*.c))
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

CONF ?= conf/demo.json

.PHONY: all help deps run test unit integration test-asan test-valgrind fuzz fuzz-replay \
	certs bench bench-cache bench-fanout bench-reconcile clean format check-format check-merge-markers lib unit-bins fuzz-lib \
	mutate check-layers

all: deps-quiet $(BUILD)/mdmgw

help:
	@echo "make            build build/plain/mdmgw"
	@echo "make run        build, make dev certificates, start the demo gateway"
	@echo "make test       unit + integration, again under ASan+UBSan, integration under valgrind, fuzz corpora"
	@echo "make deps       install the Debian packages needed (as root), else print the command"
	@echo "make certs      dev CA and ECDSA P-256 server certificate in certs/"
	@echo "make fuzz       run each libFuzzer target for FUZZ_SECONDS (default 60)"
	@echo "make check-layers  the rules of the house: includes between rooms, file and function sizes"
	@echo "make mutate     the curated mutants (tests/mutate/): each must be killed by a test; MUTANTS=id-part"
	@echo "make bench      wrk: single-device query against /healthz on the demo"
	@echo "make bench-cache  wrk: gateway from L1 / from memcached against bare servers"
	@echo "make bench-fanout  wrk + burst: hits under slow misses, dogpile, 1000 cold MACs (SCCM simulator)"
	@echo "make bench-reconcile  reconciler at 100k devices: cycle CPU, RSS/device, poll page, CoA latency"

# --- dependencies -------------------------------------------------------------------------------
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "deps: missing packages; run as root:"; \
		echo "  apt-get install -y $$missing"; exit 1; \
	fi

# Quiet variant used by the build: only acts when something is missing.
deps-quiet:
	@for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || { $(MAKE) --no-print-directory deps; break; }; done

# --- build --------------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libmdmgw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

lib: $(BUILD)/libmdmgw.a

$(BUILD)/mdmgw: $(BUILD)/obj/gateway/app/main.o $(BUILD)/libmdmgw.a
	$(CC) $(LDFLAGS_$(FLAVOUR)) -o $@ $^ $(LIBS)

# Link flags of one unit test, by its name. test_actions wraps fdatasync (the journal's only
# caller): the test sees each sync relative to the MDM call, and can make a sync fail.
UNIT_LDFLAGS_test_actions := -Wl,--wrap=fdatasync

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmdmgw.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -o $@ $< $(BUILD)/libmdmgw.a $(LDFLAGS_$(FLAVOUR)) \
		$(UNIT_LDFLAGS_$*) $(LIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmdmgw.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libmdmgw.a $(LDFLAGS_$(FLAVOUR)) $(LIBS)

unit-bins: $(UNIT_BIN) $(BUILD)/mdmgw

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- certificates -------------------------------------------------------------------------------
certs: certs/server.pem

certs/server.pem:
	@bash certs/make-dev-certs.sh certs

# --- run ----------------------------------------------------------------------------------------
run: deps-quiet $(BUILD)/mdmgw certs
	@bash conf/run-demo.sh $(BUILD)/mdmgw $(CONF)

# --- tests --------------------------------------------------------------------------------------
# Each step prints its own "N passed, N failed" line; the last line sums them all.
test: deps-quiet check-merge-markers
	@rm -f build/test-summary
	$(MAKE) --no-print-directory check-layers
	$(MAKE) --no-print-directory FLAVOUR=plain unit integration
	$(MAKE) --no-print-directory FLAVOUR=asan unit integration
	$(MAKE) --no-print-directory FLAVOUR=plain test-valgrind
	$(MAKE) --no-print-directory fuzz-replay
	@$(PYTHON) tests/summary.py build/test-summary

unit: unit-bins certs
	@$(PYTHON) tests/run_unit.py --summary build/test-summary --label "unit/$(FLAVOUR)" $(UNIT_BIN)

integration: $(BUILD)/mdmgw $(BUILD)/bench/coa_responder certs
	@$(PYTHON) tests/integration/run.py --binary $(BUILD)/mdmgw --summary build/test-summary \
		--label "integration/$(FLAVOUR)"

test-valgrind: $(BUILD)/mdmgw certs
	@$(PYTHON) tests/integration/run.py --binary $(BUILD)/mdmgw --valgrind \
		--summary build/test-summary --label "integration/valgrind"

# The rules of the house (docs/architecture.md): which room may include which, file and function
# sizes; then the proof that the check can fail, a forbidden include planted in a copy per rule.
check-layers:
	@mkdir -p build
	@$(PYTHON) tests/layers/check_layers.py
	@$(PYTHON) tests/layers/test_check_layers.py --summary build/test-summary

# --- fuzzing ------------------------------------------------------------------------------------
fuzz-lib:
	@$(MAKE) --no-print-directory FLAVOUR=fuzz CC=clang BUILD=build/fuzz build/fuzz/libmdmgw.a

build/fuzz/%: tests/fuzz/%.c fuzz-lib
	clang $(WARN_COMMON) $(CFLAGS_fuzz) $(PKG_CFLAGS) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
		-fsanitize=fuzzer -o $@ $< build/fuzz/libmdmgw.a $(LIBS)

FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BIN)
	@# New inputs land in build/fuzz/corpus/ (first directory); the checked-in seeds stay small.
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build/fuzz/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build/fuzz/corpus/$$n \
			tests/fuzz/corpus/$$n || exit 1; done

fuzz-replay: $(FUZZ_BIN)
	@$(PYTHON) tests/fuzz/replay.py --summary build/test-summary $(FUZZ_BIN)

# --- mutation testing ---------------------------------------------------------------------------
# Not part of `make test` (it rebuilds and reruns tests once per mutant). Ends with the line
# "mutants killed N/M"; MUTANTS=radius. runs the mutants whose id holds that text.
mutate: deps-quiet certs
	@$(PYTHON) tests/mutate/mutate.py $(if $(MUTANTS),--only $(MUTANTS))

# --- bench --------------------------------------------------------------------------------------
bench: deps-quiet $(BUILD)/mdmgw certs
	@bash bench/bench.sh $(BUILD)/mdmgw

bench-cache: deps-quiet $(BUILD)/mdmgw $(BUILD)/bench/bare_server certs
	@bash bench/bench-cache.sh $(BUILD)/mdmgw $(BUILD)/bench/bare_server

bench-fanout: deps-quiet $(BUILD)/mdmgw $(BUILD)/bench/burst certs
	@bash bench/bench-fanout.sh $(BUILD)/mdmgw $(BUILD)/bench/burst

bench-reconcile: deps-quiet $(BUILD)/mdmgw $(BUILD)/bench/coa_responder certs
	@bash bench/reconcile.sh $(BUILD)/mdmgw $(BUILD)/bench/coa_responder

# --- housekeeping -------------------------------------------------------------------------------
format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# A merge that left its conflict markers in a tracked file once landed; never again.
check-merge-markers:
	@if git grep -n -I -E '^(<<<<<<< |>>>>>>> |=======$$)' -- . ':!*.md.orig' >/dev/null 2>&1; then \
		git grep -n -I -E '^(<<<<<<< |>>>>>>> |=======$$)' -- .; \
		echo "conflict markers left in tracked files"; exit 1; fi

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
