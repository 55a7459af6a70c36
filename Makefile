# Encore — top-level build.
#
#   make            build the nginx modules, the worker runtime and workers,
#                   and the web UI
#   make web        the web UI: web/ bundled by esbuild into build/web/
#   make asan       the same with AddressSanitizer + UBSan (into build-asan/),
#                   plus an nginx 1.22.1 built from source to load them
#   make start|stop|status|run   the local stack (see README.md)
#   make test       every suite, on a private stack in var/test
#   make test-unit  the unit suite only (cmocka under ASan with a throwaway
#                   PostgreSQL, and tests/unit/api), as make test runs it
#   make test-integration   the integration suite only (PYTEST_ARGS=...)
#   make deb        the Debian packages (debian/) into build/deb/
#   make clean      remove build output; make reset wipes var/ data
#
# Layout conventions (so that new code needs no Makefile edit):
#   workers/lib/*.c                  -> $(BUILD)/libencore.a
#   workers/<w>/*.c (w != lib)       -> $(BUILD)/bin/encore-<w>
#                                       (main.c holds main(); the other
#                                       files also go into lib<w>.a so unit
#                                       tests can link them)
#   tools/<t>.c                      -> $(BUILD)/bin/encore-<t>: operator
#                                       tools on libencore that serve
#                                       nothing (encore-topics)
#   ngx_modules/<m>/encore_*.c       nginx-independent code of module <m>,
#                                       also archived as libngx_<m>.a
#   tests/unit/<area>/test_*.c       cmocka tests; <area> is lib, a worker
#                                       or a module; linked with that area's
#                                       archive and libencore.a
#   tests/fuzz/fuzz_*.c              libFuzzer harnesses (make fuzz)

BUILD      ?= build
CC         ?= cc
OPTFLAGS   ?= -O2
SANFLAGS   ?=
PKGS       := libmicrohttpd jansson libpq rdkafka libcrypto libargon2 libcurl

WARNFLAGS  := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS     := -std=gnu11 -g $(OPTFLAGS) $(WARNFLAGS) -fPIC -D_GNU_SOURCE \
              -Iworkers/lib $(shell pkg-config --cflags $(PKGS)) $(SANFLAGS)
LDLIBS     := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
TEST_LDLIBS := $(shell pkg-config --libs cmocka)

WORKERS    := $(filter-out lib,$(notdir $(patsubst %/,%,$(dir $(wildcard workers/*/main.c)))))
# a worker's archive exists as soon as it has a .c file (its unit tests can
# come before its main.c)
WORKER_LIBS := $(filter-out lib,$(notdir $(patsubst %/,%,$(dir $(wildcard workers/*/*.c)))))
LIB_SRC    := $(wildcard workers/lib/*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MODULES    := $(notdir $(patsubst %/,%,$(dir $(wildcard ngx_modules/*/config))))
UNIT_AREAS := $(notdir $(patsubst %/,%,$(dir $(wildcard tests/unit/*/test_*.c))))
UNIT_SRC   := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all workers modules unit asan fuzz test test-unit test-integration \
        start stop status run reset clean deps check-nginx deb web

all: workers modules web

deps:
	auto/deps

# ---- worker runtime and workers -------------------------------------------

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libencore.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

define worker_rules
$(1)_SRC := $$(filter-out workers/$(1)/main.c,$$(wildcard workers/$(1)/*.c))
$(1)_OBJ := $$($(1)_SRC:%.c=$$(BUILD)/obj/%.o)

$$(BUILD)/lib$(1).a: $$($(1)_OBJ)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^

$$(BUILD)/bin/encore-$(1): $$(BUILD)/obj/workers/$(1)/main.o \
        $$(BUILD)/lib$(1).a $$(BUILD)/libencore.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach w,$(sort $(WORKER_LIBS)),$(eval $(call worker_rules,$(w))))

TOOLS      := $(notdir $(basename $(wildcard tools/*.c)))

$(BUILD)/bin/encore-%: $(BUILD)/obj/tools/%.o $(BUILD)/libencore.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

workers: $(BUILD)/libencore.a $(WORKERS:%=$(BUILD)/bin/encore-%) \
         $(TOOLS:%=$(BUILD)/bin/encore-%)

# nginx-independent code of the modules, archived for unit tests and fuzzing
define module_core_rules
$(1)_CORE_SRC := $$(wildcard ngx_modules/$(1)/encore_*.c ngx_modules/common/encore_*.c)
$(1)_CORE_OBJ := $$($(1)_CORE_SRC:%.c=$$(BUILD)/obj/%.o)
$$(BUILD)/libngx_$(1).a: $$($(1)_CORE_OBJ)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_core_rules,$(m))))

# ---- nginx dynamic modules ------------------------------------------------

modules:
	+@if [ -n "$(MODULES)" ]; then \
	    BUILD=$(BUILD) SANFLAGS="$(SANFLAGS)" auto/modules; \
	else echo "make: no nginx modules under ngx_modules/ yet"; fi

# ---- the web UI ---------------------------------------------------------------

# web/src/ bundled, minified and hashed into build/web/ (web/build.mjs);
# esbuild and the bundled packages come from web/package-lock.json (npm
# ci, auto/deps web: a no-op when node_modules/ matches the lock file)
web:
	@auto/deps web
	node web/build.mjs

# ---- unit tests (cmocka) --------------------------------------------------

area_archive = $(if $(filter lib,$(1)),,$(if $(filter $(1),$(WORKER_LIBS)),$(BUILD)/lib$(1).a,$(BUILD)/libngx_$(1).a))

.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $$(call area_archive,$$(firstword $$(subst /, ,$$*))) \
        $(BUILD)/libencore.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

unit: $(UNIT_BIN)

# the suites exactly as `make test` runs them (auto/test): the database-
# backed unit tests need its throwaway PostgreSQL, and a skip is an error
test-unit:
	ENCORE_TEST_SUITES=unit auto/test

test-integration:
	ENCORE_TEST_SUITES=integration auto/test

# ---- sanitizers, fuzzing --------------------------------------------------

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined

asan:
	$(MAKE) BUILD=build-asan OPTFLAGS=-O1 SANFLAGS="$(ASAN_FLAGS)" workers unit
	BUILD=build-asan auto/nginx-asan

fuzz:
	auto/fuzz

# benchmarks: tests/bench/<name>/run, one command each (make bench-jwt)
bench-%:
	tests/bench/$*/run

# ---- the stack --------------------------------------------------------------

# deps first: a fresh machine has no compiler packages before auto/deps
start:
	auto/deps
	$(MAKE) all
	auto/stack start

stop:
	auto/stack stop

status:
	auto/stack status

run:
	auto/deps
	$(MAKE) all
	auto/stack run

reset:
	auto/stack reset

test:
	auto/test

# the Debian packages, built in a copy under build/deb (auto/deb)
deb:
	auto/deb

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
