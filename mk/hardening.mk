# Hardening: smuggling/malformed-HTTP, backend-fault and exhaustion e2e
# tests, the http unit tests, libFuzzer harnesses.
## e2e-smuggling: request smuggling and malformed HTTP, both directions
$(eval $(call PYTEST_SUITE,e2e-smuggling,tests/e2e/test_smuggling.py,$(LBPROXY) $(LBBACKEND)))

## e2e-desync: 1xx relay, bytes after a response, pipelining + half-close
$(eval $(call PYTEST_SUITE,e2e-desync,tests/e2e/test_response_desync.py,$(LBPROXY) $(LBBACKEND)))

## e2e-retry: what [retry] on names is retried (5xx opt-in), the retry budget bounds it
$(eval $(call PYTEST_SUITE,e2e-retry,tests/e2e/test_retry.py,$(LBPROXY) $(LBBACKEND)))

## e2e-queue: max_conns caps each backend's in-flight; the queue, its limit and timeout (503 + Retry-After)
$(eval $(call PYTEST_SUITE,e2e-queue,tests/e2e/test_queue.py,$(LBPROXY) $(LBBACKEND)))

## e2e-exhaustion: limits and timeouts act; slowloris crowd; fd exhaustion
$(eval $(call PYTEST_SUITE,e2e-exhaustion,tests/e2e/test_exhaustion.py,$(LBPROXY) $(LBBACKEND)))

## e2e-faults: killed, silent, resetting and lying backends under load
$(eval $(call PYTEST_SUITE,e2e-faults,tests/e2e/test_faults.py,$(LBPROXY) $(LBBACKEND)))

# ---- fuzzing (clang + libFuzzer; objects of their own under build/fuzz) ----
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -DLLHTTP_STRICT_MODE=1 \
                -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_CPPFLAGS := -Iinclude -I$(LLHTTP_INC)
FUZZERS      := fuzz_request fuzz_response fuzz_proxyproto fuzz_route
FUZZ_BINS    := $(FUZZERS:%=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJS := $(FUZZ_DIR)/llhttp/llhttp.o $(FUZZ_DIR)/llhttp/api.o \
                 $(FUZZ_DIR)/llhttp/http.o $(FUZZ_DIR)/src/http.o \
                 $(FUZZ_DIR)/src/http_build.o $(FUZZ_DIR)/src/proxyproto.o \
                 $(FUZZ_DIR)/src/route.o

$(FUZZ_DIR)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(call E,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -I$(LLHTTP_INC) -c $< -o $@

$(FUZZ_DIR)/src/%.o: src/%.c include/http.h src/http_impl.h include/proxyproto.h
	@mkdir -p $(dir $@)
	$(call E,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) $(FUZZ_CPPFLAGS) -c $< -o $@

$(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS) include/http.h include/proxyproto.h
	@mkdir -p $(dir $@)
	$(call E,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) -fsanitize=fuzzer $(FUZZ_CPPFLAGS) \
	    -o $@ $< $(FUZZ_LIB_OBJS)

# fuzz_llhttp_cpu (x86-64 only): the two llhttp builds side by side, named
# as the Makefile names them for lbproxy (LLHTTP_SSE42), with
# tests/lib/llhttp_trace.c; seeded from its own corpus and the request
# and response harnesses' corpora.
ifeq ($(LLHTTP_SSE42),1)
FUZZERS      += fuzz_llhttp_cpu
FUZZ_BINS    += $(FUZZ_DIR)/fuzz_llhttp_cpu
FUZZ_SEEDS_fuzz_llhttp_cpu := tests/fuzz/corpus/fuzz_request \
                              tests/fuzz/corpus/fuzz_response
FUZZ_CPU_OBJS := $(FUZZ_DIR)/llhttp-cpu/llhttp_base.o \
                 $(FUZZ_DIR)/llhttp-cpu/llhttp_sse42.o $(FUZZ_DIR)/llhttp/api.o \
                 $(FUZZ_DIR)/llhttp/http.o $(FUZZ_DIR)/src/llhttp_cpu.o \
                 $(FUZZ_DIR)/tests/lib/llhttp_trace.o

# both from llhttp.c, with the Makefile's renames (LLHTTP_DEFS there)
$(FUZZ_DIR)/llhttp-cpu/llhttp_%.o: $(LLHTTP_DIR)/llhttp.c
	@mkdir -p $(dir $@)
	$(call E,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -I$(LLHTTP_INC) $(FUZZ_LLHTTP_DEFS) -c $< -o $@
$(FUZZ_DIR)/llhttp-cpu/llhttp_base.o: FUZZ_LLHTTP_DEFS := $(LLHTTP_BASE_DEFS)
$(FUZZ_DIR)/llhttp-cpu/llhttp_sse42.o: FUZZ_LLHTTP_DEFS := -msse4.2 \
    @$(FUZZ_DIR)/llhttp/sse42.defs
$(FUZZ_DIR)/llhttp-cpu/llhttp_sse42.o: $(FUZZ_DIR)/llhttp/sse42.defs

$(FUZZ_DIR)/tests/lib/%.o: tests/lib/%.c tests/lib/%.h include/llhttp_cpu.h
	@mkdir -p $(dir $@)
	$(call E,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) $(FUZZ_CPPFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_llhttp_cpu: tests/fuzz/fuzz_llhttp_cpu.c $(FUZZ_CPU_OBJS)
	@mkdir -p $(dir $@)
	$(call E,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) -fsanitize=fuzzer $(FUZZ_CPPFLAGS) \
	    -Itests/lib -o $@ $< $(FUZZ_CPU_OBJS)
.SECONDARY: $(FUZZ_CPU_OBJS)
endif

.SECONDARY: $(FUZZ_LIB_OBJS)
.PHONY: fuzz fuzz-build fuzz-regress
## fuzz-build: build the libFuzzer harnesses (clang, ASan + UBSan)
fuzz-build: $(FUZZ_BINS)

## fuzz: run each fuzz harness for FUZZ_SECONDS (default 60) on its corpus
# (new inputs go to the first corpus directory, the one under build/fuzz;
# the checked-in ones and FUZZ_SEEDS_<harness> are only read)
fuzz: $(FUZZ_BINS)
	$(Q)set -e; $(foreach f,$(FUZZERS), \
	    echo "== $(f) ($(FUZZ_SECONDS) s)"; \
	    mkdir -p $(FUZZ_DIR)/corpus/$(f) $(FUZZ_DIR)/artifacts; \
	    $(FUZZ_DIR)/$(f) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$(f)- \
	        $(FUZZ_DIR)/corpus/$(f) tests/fuzz/corpus/$(f) $(FUZZ_SEEDS_$(f));)

# The checked-in corpus (seeds and regression inputs) replays in a second
# (part of `make test`); real fuzzing (`make fuzz`) is by hand or a
# separate CI step.
## fuzz-regress: replay the checked-in fuzz corpus once (no fuzzing)
fuzz-regress: $(FUZZ_BINS)
	$(Q)set -e; $(foreach f,$(FUZZERS), \
	    $(FUZZ_DIR)/$(f) -runs=0 -artifact_prefix=$(FUZZ_DIR)/ \
	        tests/fuzz/corpus/$(f) $(FUZZ_SEEDS_$(f)) \
	        > $(FUZZ_DIR)/$(f).regress.log 2>&1 || \
	        { cat $(FUZZ_DIR)/$(f).regress.log; exit 1; }; \
	    echo "  $(f): `tail -1 $(FUZZ_DIR)/$(f).regress.log`";)
