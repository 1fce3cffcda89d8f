# Hardening: smuggling/malformed-HTTP, backend-fault and exhaustion e2e
# tests, the http unit tests, libFuzzer harnesses.
.PHONY: e2e-smuggling
## e2e-smuggling: request smuggling and malformed HTTP, both directions
e2e-smuggling: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_smuggling.py

TESTS += e2e-smuggling

.PHONY: e2e-exhaustion
## e2e-exhaustion: limits and timeouts act; slowloris crowd; fd exhaustion
e2e-exhaustion: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_exhaustion.py

TESTS += e2e-exhaustion

.PHONY: e2e-faults
## e2e-faults: killed, silent, resetting and lying backends under load
e2e-faults: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_faults.py

TESTS += e2e-faults
