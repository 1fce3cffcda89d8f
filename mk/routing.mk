# Pools and routes ([pool.NAME], [route.NAME]; src/config_pool.c,
# src/route.c, src/pool.c) through ./lbproxy to ./lbbackend processes.

## e2e-routing: host/path routes to named pools: matching order, 404/421, per-pool settings, stats, metrics, log, reload
$(eval $(call PYTEST_SUITE,e2e-routing,tests/e2e/test_routing.py,$(LBPROXY) $(LBBACKEND)))
