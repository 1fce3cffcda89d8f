# lbproxy — build, test and run.  `make help` lists the targets.
#
# Layout of the build: objects and the compiled llhttp under build/, the two
# binaries at the top.  Feature areas add their own rules in mk/*.mk; a
# pytest suite is declared there with PYTEST_SUITE (below).  The order in
# which `make test` runs the suites is TESTS, written out once here after
# the fragments are read.

CC        ?= cc
PREFIX    ?= /usr/local
DESTDIR   ?=
BUILD     := build
LLHTTP_DIR     ?= /usr/share/llhttp
LLHTTP_INC     ?= /usr/share/include/llhttp
PYTHON    ?= /usr/bin/python3

WARN   := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
          -Wformat=2 -Werror
CSTD   := -std=c11 -D_GNU_SOURCE
OPT    ?= -O3 -g
CPPFLAGS += -Iinclude -I$(LLHTTP_INC) -MMD -MP
# -fno-plt: calls into shared libraries (recv, send, memcpy...) go through
# the GOT at once rather than a PLT stub (make callgrind: 14 fewer
# instructions per request)
CFLAGS   += $(CSTD) $(OPT) $(WARN) -fno-plt
LDLIBS   += -lssl -lcrypto -lm

# Assertions (invariants of buffers, legal state transitions) are checked in
# the sanitizer build, which runs every test suite, and with DEBUG=1; the
# normal build leaves them out of the hot path.
ifneq ($(SANITIZE)$(DEBUG),)
else
CPPFLAGS += -DNDEBUG
endif

# Link-time optimisation: the modules are small and call each other on the
# hot path (half, buf, http, loop), so inlining across them matters
# (make callgrind: about 15% fewer instructions per request).  LTO=0 turns
# it off; the sanitizer build does not use it.
LTO ?= 1
ifeq ($(SANITIZE),1)
LTO := 0
# -O3's deeper inlining under the sanitizers trips GCC's format-truncation
# analysis on false positives; the sanitizer build measures nothing.
ifeq ($(origin OPT),file)
OPT := -O2 -g
endif
endif
ifeq ($(LTO),1)
CFLAGS  += -flto=auto
LDFLAGS += -flto=auto $(OPT) -fno-plt
AR      := gcc-ar
endif

ifeq ($(SANITIZE),1)
BUILD   := build/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifneq ($(V),1)
Q := @
E = @printf '  %-7s %s\n' $(1) $(2)
else
Q :=
E = @true
endif

LIB_SRCS  := $(filter-out src/main.c src/llhttp_cpu.c,$(wildcard src/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LLHTTP_OBJS := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o

# On x86-64 llhttp.c is compiled twice, entry points renamed: a baseline
# build and one for CPUs with SSE4.2, whose header-value scan takes 16
# bytes at a time.  src/llhttp_cpu.c defines the entry point api.c calls
# and sends it to the build this CPU can run (make callgrind: about 60
# instructions fewer per request).  LLHTTP_SSE42=0 builds the baseline only.
LLHTTP_SSE42 ?= $(if $(findstring x86_64,$(shell $(CC) -dumpmachine)),1,0)
ifeq ($(LLHTTP_SSE42),1)
LLHTTP_OBJS += $(BUILD)/llhttp/llhttp_sse42.o $(BUILD)/src/llhttp_cpu.o
# (the rename is also the fuzz build's, mk/hardening.mk)
LLHTTP_BASE_DEFS := -Dllhttp__internal_execute=llhttp__internal_execute_base
$(BUILD)/llhttp/llhttp.o: LLHTTP_DEFS := $(LLHTTP_BASE_DEFS)
# every global of the second build gets the suffix _sse42: the names come
# from the baseline's own symbol table, as a response file (@file) for cc
$(BUILD)/llhttp/llhttp_sse42.o: LLHTTP_DEFS := -msse4.2 @$(BUILD)/llhttp/sse42.defs
endif
BACK_SRCS := $(wildcard backends/*.c)
BACK_OBJS := $(BACK_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
ifneq ($(LLHTTP_SSE42),1) # the two llhttp builds it compares are not made
UNIT_SRCS := $(filter-out tests/unit/test_llhttp_cpu.c,$(UNIT_SRCS))
endif
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
LIBLB     := $(BUILD)/liblb.a

PKG_LIBS  := $(shell pkg-config --libs inih 2>/dev/null || echo -linih) -lcsv \
             $(shell pkg-config --libs libcares 2>/dev/null || echo -lcares) \
             $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)

# Binaries are only rebuilt at the top for the normal build; the sanitizer
# build keeps its own copies under build/san.
ifeq ($(SANITIZE),1)
LBPROXY   := $(BUILD)/lbproxy
LBBACKEND := $(BUILD)/lbbackend
else
LBPROXY   := lbproxy
LBBACKEND := lbbackend
endif
export LBPROXY LBBACKEND

# The C files `make fmt` formats and `make fmt-check` checks: all of them.
C_FILES := $(wildcard src/*.c src/*.h include/*.h backends/*.c backends/*.h \
                      tests/*.c tests/unit/*.c tests/sim/*.c tests/fuzz/*.c \
                      tests/lib/*.c tests/lib/*.h \
                      scripts/bench/*.c)

# PYTEST_SUITE(target,test file,prerequisites[,environment]): the one rule
# shape of a pytest suite, used by every mk/*.mk that runs one:
#   ## e2e-x: what it proves (for `make help`)
#   $(eval $(call PYTEST_SUITE,e2e-x,tests/e2e/test_x.py,$(LBPROXY)))
# It runs from the top of the tree, quiet, without a .pytest_cache, and
# registers the target in PYTEST_SUITES (each must be in TESTS).
PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider
PYTEST_SUITES :=
define PYTEST_SUITE
.PHONY: $(1)
$(1): $(3)
	$$(Q)$(4) $$(PYTEST) $(2)
PYTEST_SUITES += $(1)
endef

.PHONY: all test asan unit fmt fmt-check lint clean deps install help demo
all: $(LBPROXY) $(LBBACKEND)

# llhttp's sources: our warnings off, its own defines (LLHTTP_DEFS above)
LLHTTP_CC = $(CC) -std=c11 $(OPT) -fPIC -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) \
            $(LLHTTP_DEFS) $(filter -fsanitize% -flto%,$(CFLAGS))
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(LLHTTP_CC) -c $< -o $@

$(BUILD)/llhttp/llhttp_sse42.o: $(LLHTTP_DIR)/llhttp.c $(BUILD)/llhttp/sse42.defs Makefile
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(LLHTTP_CC) -c $< -o $@

# (a pattern: the fuzz build under build/fuzz makes its own)
%/llhttp/sse42.defs: $(LLHTTP_DIR)/llhttp.c Makefile
	@mkdir -p $(dir $@)
	$(call E,GEN,$@)
	$(Q)$(CC) -std=c11 -O0 -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) -c $< \
	    -o $@.o && nm -g --defined-only $@.o | \
	    awk 'NF == 3 { print "-D" $$3 "=" $$3 "_sse42" }' > $@ && rm -f $@.o

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBLB): $(LIB_OBJS) $(LLHTTP_OBJS)
	$(call E,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(LBPROXY): $(BUILD)/src/main.o $(LIBLB)
	$(call E,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(LBBACKEND): $(BACK_OBJS) $(LIBLB)
	$(call E,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# A unit test may name helper sources of tests/lib as extra prerequisites;
# they are compiled into it.
$(BUILD)/tests/%: tests/unit/%.c $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Isrc -Itests/lib $(CFLAGS) -Wno-missing-prototypes \
	    $(LDFLAGS) -o $@ $< $(filter tests/lib/%.c,$^) $(LIBLB) -lcmocka \
	    $(PKG_LIBS) $(LDLIBS)
$(BUILD)/tests/test_llhttp_cpu: tests/lib/llhttp_trace.c tests/lib/llhttp_trace.h

-include mk/*.mk

## unit: build and run the C unit tests (cmocka)
unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; ./$$t; done

# The order of `make test`, the one the README's "Tests" section gives:
# pure code first (unit, simulator, config), then the e2e suites from the
# backend emulator outwards, the Python unit test, the fuzz corpus replay
# and the browser last.  A fragment's own `TESTS +=` is not used.
TESTS := unit sim config-check \
         e2e-backend e2e-proxy e2e-health e2e-balancing e2e-hash e2e-prequal \
         e2e-smuggling e2e-desync e2e-retry e2e-queue \
         e2e-exhaustion e2e-faults \
         e2e-admin e2e-observability e2e-runtime-api e2e-relay e2e-frontdoor e2e-tunnel e2e-tls e2e-backend-tls \
         e2e-scaleout e2e-workers e2e-routing e2e-dns e2e-discovery \
         analyze-test bench-tools-test fuzz-regress browser
ifneq ($(filter-out $(TESTS),$(PYTEST_SUITES)),)
$(error pytest suites missing from TESTS in the Makefile: $(filter-out $(TESTS),$(PYTEST_SUITES)))
endif
# The bench tools measure the normal build (valgrind cannot run an ASan one).
ifeq ($(SANITIZE),1)
TESTS := $(filter-out bench-tools-test,$(TESTS))
endif

## test: build everything and run every suite in the order of TESTS (README "Tests")
test:
	$(Q)scripts/install-deps.sh --quiet
	$(Q)$(MAKE) --no-print-directory all
	$(Q)set -e; for t in $(TESTS); do $(MAKE) --no-print-directory $$t; done

## asan: run the tests under AddressSanitizer + UndefinedBehaviorSanitizer
asan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 test

## deps: install the Debian packages the build and tests need
deps:
	$(Q)scripts/install-deps.sh

## fmt: format every C file with the checked-in .clang-format
fmt:
	$(Q)clang-format -i $(C_FILES)

## fmt-check: fail if a C file is not formatted as `make fmt` would (CI)
fmt-check:
	$(Q)clang-format --dry-run -Werror $(C_FILES)

## lint: static analysis with cppcheck
lint:
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --inline-suppr -Iinclude src backends

## install: install binaries, default config, dashboard (PREFIX, DESTDIR)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/lbproxy/dashboard \
	    $(DESTDIR)$(PREFIX)/etc/lbproxy
	install -m 755 lbproxy lbbackend $(DESTDIR)$(PREFIX)/bin/
	install -m 644 config/lbproxy.ini config/backends.ini $(DESTDIR)$(PREFIX)/etc/lbproxy/
	cp -R dashboard/. $(DESTDIR)$(PREFIX)/share/lbproxy/dashboard/
	@# the dashboard's npm libraries, served under /vendor/
	for m in uplot papaparse; do \
	    test -d node_modules/$$m || { echo "run scripts/install-deps.sh first"; exit 1; }; \
	    install -d $(DESTDIR)$(PREFIX)/share/lbproxy/node_modules/$$m; \
	    cp -R node_modules/$$m/. $(DESTDIR)$(PREFIX)/share/lbproxy/node_modules/$$m/; \
	done
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's#/usr/local#$(PREFIX)#g' config/lbproxy.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/lbproxy.service

## clean: remove build outputs and binaries
clean:
	rm -rf $(BUILD) build lbproxy lbbackend

## help: list the targets
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed 's/^## /  make /'
	@echo '  (make test runs, in order: $(TESTS))'

-include $(shell find build -name '*.d' 2>/dev/null)
