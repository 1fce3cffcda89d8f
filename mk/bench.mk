# Benchmarks (never part of `make test`: they measure, they do not pass or
# fail), the unit test of the analysis script and the functional test of the
# benchmark's L4 relay (both part of `make test`).  See docs/benchmarks.md.

# The quickbench's "relay" row: a blind L4 TCP relay, the kernel floor of any
# user-space proxy.  Not part of lbproxy or liblb; built with `all` so that
# a plain `make` leaves everything scripts/quickbench.sh needs.
RELAY := $(BUILD)/bench/relay
export RELAY

# The open-loop generator (scripts/bench/openloop.c) on the project's event
# loop: Poisson arrivals at a fixed rate, latency from the intended time.
OPENLOOP := $(BUILD)/bench/openloop
export OPENLOOP

all: $(RELAY) $(OPENLOOP)

$(OPENLOOP): scripts/bench/openloop.c $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBLB) $(LDLIBS)

$(RELAY): scripts/bench/relay.c
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

.PHONY: bench quickbench logcost relay idlemem callgrind callgrind-np hang budget openbench scaleout workers drain

## bench: full benchmark matrix over config/scenarios, then the open-loop stage on capped (SCENARIOS= DURATION= REPEAT= CONNS= THREADS= CONFIGS=; OPEN=0 OPEN_SCENARIOS= OFFERED= OPEN_CONFIGS= OPEN_DURATION=)
bench: all $(OPENLOOP)
	$(Q)scripts/bench.sh

## quickbench: direct vs L4 relay floor vs lbproxy vs nginx on 0 ms backends (DURATION= REPEAT= CONFIGS=)
quickbench: all $(RELAY)
	$(Q)scripts/quickbench.sh

## idlemem: KiB of RSS per idle keep-alive connection, lbproxy vs nginx vs HAProxy (N= REPEAT= PROXIES=)
idlemem: all
	$(Q)$(PYTHON) scripts/bench/idlemem.py

## callgrind: user-space instructions per proxied request, lbproxy persistent round-robin under callgrind (REPEAT=)
callgrind: all
	$(Q)$(PYTHON) scripts/bench/callgrind.py

## callgrind-np: the same, lbproxy --non-persistent
callgrind-np: all
	$(Q)$(PYTHON) scripts/bench/callgrind.py --non-persistent

## hang: one of three exp:2ms backends SIGSTOPped for 6 s under wrk -c100: max latency, errors, req/s vs no fault (DURATION= HANG_START= HANG_LEN= REPEAT= CONFIGS=)
hang: all
	$(Q)$(PYTHON) scripts/bench/hang.py

## openbench: open-loop load (Poisson arrivals at OFFERED= fractions of the capacity bound, or req/s): p50..p99.9 per configuration and a p99-vs-load plot (SCENARIOS= CONFIGS= DURATION=); --check-mmk compares the generator with M/M/8
openbench: all $(OPENLOOP)
	$(Q)$(PYTHON) scripts/bench/openbench.py

## budget: all three backends 10x slower at once under wrk -c100: extra attempts (hedges, retries) and req/s with hedging, without it and without the budget (DURATION= REPEAT=)
budget: all
	$(Q)$(PYTHON) scripts/bench/budget.py

## scaleout: two lbproxy instances behind an nftables numgen VIP (network namespaces, root) against one, on the capped set: req/s vs the capacity bound (DURATION= REPEAT= MODE=)
scaleout: all
	$(Q)$(PYTHON) scripts/bench/scaleout.py

## drain: backend B drained through the runtime API under wrk -c100 (three fixed:20ms backends): failed requests, B's in-flight until drained, B's requests after it, two bad tokens (DURATION= REPEAT=)
drain: all
	$(Q)$(PYTHON) scripts/bench/drain.py

## workers: --workers 1 vs 2: the capped set vs its bound, /api/stats and /metrics vs wrk's count, kill -9 of a worker under load, CPU per request on the flat set, hang.py with 2 workers (DURATION= REPEAT= PARTS= CONFIGS= WORKER_CPUS=)
workers: all
	$(Q)$(PYTHON) scripts/bench/workers.py

## bench-tools-test: bench.py's --help and argument check, idlemem.py (N=200), callgrind.py (200 requests), hang.py (3-s runs, 1-s hang), budget.py (4-s runs), openbench.py (3-s run), scaleout.py (2-s runs; root), workers.py (2-s runs, a worker killed), drain.py (3-s run), bench.py's TLS scenarios (1-s runs) and open-loop stage (2-s runs) and the openloop generator produce their figures and leave nothing behind
$(eval $(call PYTEST_SUITE,bench-tools-test,tests/bench,all))

## logcost: the CSV request log's cost, lbproxy persistent round-robin with --log off and on, alternating (DURATION= REPEAT=)
logcost: all
	$(Q)scripts/logcost.sh

## relay: build the quickbench's L4 relay (build/bench/relay)
relay: $(RELAY)

## analyze-test: unit test of scripts/analyze on a synthetic run directory
$(eval $(call PYTEST_SUITE,analyze-test,tests/unit_py/test_analyze.py,))

## e2e-relay: the quickbench's L4 relay carries keep-alive requests, a 1 MB echo, round-robin per connection
$(eval $(call PYTEST_SUITE,e2e-relay,tests/e2e/test_relay.py,$(RELAY) $(LBBACKEND)))
