# lbproxy — build, test and run.  `make help` lists the targets.
#
# Layout of the build: objects and the compiled llhttp under build/, the two
# binaries at the top.  Feature areas add their own rules in mk/*.mk; each
# fragment may append to TESTS (phony targets run in order by `make test`).

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
OPT    ?= -O2 -g
CPPFLAGS += -Iinclude -I$(LLHTTP_INC) -MMD -MP
CFLAGS   += $(CSTD) $(OPT) $(WARN)
LDLIBS   += -lm

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

LIB_SRCS  := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LLHTTP_OBJS := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
BACK_SRCS := $(wildcard backends/*.c)
BACK_OBJS := $(BACK_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
LIBLB     := $(BUILD)/liblb.a

PKG_LIBS  := $(shell pkg-config --libs inih 2>/dev/null || echo -linih) -lcsv

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

TESTS :=

.PHONY: all test asan unit fmt lint clean deps install help demo
all: $(LBPROXY) $(LBBACKEND)

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) -std=c11 $(OPT) -fPIC -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) \
	    $(filter -fsanitize%,$(CFLAGS)) -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBLB): $(LIB_OBJS) $(LLHTTP_OBJS)
	$(call E,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LBPROXY): $(BUILD)/src/main.o $(LIBLB)
	$(call E,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(LBBACKEND): $(BACK_OBJS) $(LIBLB)
	$(call E,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Isrc $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) \
	    -o $@ $< $(LIBLB) -lcmocka $(PKG_LIBS) $(LDLIBS)

-include mk/*.mk

## unit: build and run the C unit tests (cmocka)
unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; ./$$t; done

TESTS := unit $(TESTS)

## test: build everything and run every test suite (unit, simulation, e2e, browser)
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

## fmt: format the C sources with the checked-in .clang-format
fmt:
	$(Q)clang-format -i src/*.c include/*.h backends/*.c $(wildcard backends/*.h) tests/unit/*.c

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

-include $(shell find build -name '*.d' 2>/dev/null)
