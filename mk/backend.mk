# Backend emulator (./lbbackend, sources in backends/): its end-to-end
# tests.  Its unit tests (tests/unit/test_backend*.c) are built and run by
# the main Makefile's `unit` target.

TESTS += e2e-backend

.PHONY: e2e-backend
## e2e-backend: end-to-end tests of the latency-emulating backend (pytest)
e2e-backend: $(LBBACKEND)
	$(Q)$(PYTHON) -m pytest -q tests/e2e/test_backend.py
