# End-to-end tests of balancing and active health checks through the real
# ./lbproxy and ./lbbackend (see docs/health.md, docs/balancing.md).

## e2e-balancing: e2e tests of the policies' traffic split, load awareness, ejection, fail-open, degrade (~35 s)
$(eval $(call PYTEST_SUITE,e2e-balancing,tests/e2e/test_balancing.py,$(LBPROXY) $(LBBACKEND)))

## e2e-health: e2e tests of the active health checks (~6 s)
$(eval $(call PYTEST_SUITE,e2e-health,tests/e2e/test_health.py,$(LBPROXY) $(LBBACKEND)))

## e2e-hash: e2e tests of mode = hash: keys stick, fallback to the client address, one of five lost moves only its keys, bounded load spreads a hot key (~25 s)
$(eval $(call PYTEST_SUITE,e2e-hash,tests/e2e/test_hash.py,$(LBPROXY) $(LBBACKEND)))

## e2e-prequal: e2e tests of mode = prequal: probes reach the backends at a bounded rate (also idle), a slow backend gets less, one without the probe endpoint still serves (~10 s)
$(eval $(call PYTEST_SUITE,e2e-prequal,tests/e2e/test_prequal.py,$(LBPROXY) $(LBBACKEND)))
