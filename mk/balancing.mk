# End-to-end tests of balancing and active health checks through the real
# ./lbproxy and ./lbbackend (see docs/health.md, docs/balancing.md).
.PHONY: e2e-balancing e2e-health

## e2e-balancing: e2e tests of the policies' traffic split, load awareness, ejection, fail-open, degrade (~35 s)
e2e-balancing: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_balancing.py

## e2e-health: e2e tests of the active health checks (~6 s)
e2e-health: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_health.py

TESTS += e2e-health e2e-balancing
