# Hardening: smuggling/malformed-HTTP, backend-fault and exhaustion e2e
# tests, the http unit tests, libFuzzer harnesses.
.PHONY: e2e-smuggling
## e2e-smuggling: request smuggling and malformed HTTP, both directions
e2e-smuggling: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_smuggling.py

TESTS += e2e-smuggling
