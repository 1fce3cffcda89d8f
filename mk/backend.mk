# Backend emulator (./lbbackend, sources in backends/): its end-to-end
# tests.  Its unit tests (tests/unit/test_backend*.c) are built and run by
# the main Makefile's `unit` target.

## e2e-backend: end-to-end tests of the latency-emulating backend (pytest)
$(eval $(call PYTEST_SUITE,e2e-backend,tests/e2e/test_backend.py,$(LBBACKEND)))
