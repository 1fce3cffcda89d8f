# Benchmarks (never part of `make test`: they measure, they do not pass or
# fail) and the unit test of the analysis script (part of `make test`).
# See docs/benchmarks.md.

.PHONY: bench quickbench analyze-test

## bench: full benchmark matrix over config/scenarios (SCENARIOS= DURATION= REPEAT= CONNS= THREADS= CONFIGS=)
bench: all
	$(Q)scripts/bench.sh

## quickbench: lbproxy vs nginx vs direct on 0 ms backends (DURATION= REPEAT=)
quickbench: all
	$(Q)scripts/quickbench.sh

## analyze-test: unit test of scripts/analyze on a synthetic run directory
analyze-test:
	$(Q)$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit_py/test_analyze.py

TESTS += analyze-test
