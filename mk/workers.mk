# --workers N: a master and its workers sharing balancers, health and stats
# (src/master.c, docs/workers.md).  The benchmark is `make workers` in
# mk/bench.mk.

## e2e-workers: --workers 2: both serve and one view counts all, round-robin and max_fails shared across workers, a killed worker replaced within 1 s with nothing left in flight, SIGHUP to a new generation, SIGTERM drains
$(eval $(call PYTEST_SUITE,e2e-workers,tests/e2e/test_workers.py,$(LBPROXY) $(LBBACKEND)))
