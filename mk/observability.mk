# Observability (stats, csvlog, admin): the admin listener tested over real
# sockets through a small harness (tests/admin_harness.c: the admin module on
# a loop with synthetic traffic), independent of the proxy core.  The unit
# tests (tests/unit/test_stats.c, test_csvlog.c, test_admin_render.c) run
# under the main Makefile's `unit` target.

ADMIN_HARNESS := $(BUILD)/tests/admin_harness

$(ADMIN_HARNESS): tests/admin_harness.c $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBLB) \
	    $(PKG_LIBS) $(LDLIBS)

## e2e-admin: the admin listener over real sockets (static files, API, SSE, metrics, logs)
$(eval $(call PYTEST_SUITE,e2e-admin,tests/e2e/test_admin_server.py,$(ADMIN_HARNESS),ADMIN_HARNESS=$(ADMIN_HARNESS)))

## e2e-observability: CSV log vs backend counts, API/metrics agreement, SIGUSR1 rotation, Prometheus scrape (real lbproxy)
$(eval $(call PYTEST_SUITE,e2e-observability,tests/e2e/test_observability.py,$(LBPROXY) $(LBBACKEND)))

OBS_BENCH := $(BUILD)/tests/obs_microbench

$(OBS_BENCH): tests/obs_microbench.c $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBLB) \
	    $(PKG_LIBS) $(LDLIBS)

.PHONY: obs-bench
## obs-bench: cost per request of stats and the CSV log, and of rendering the admin API (a measurement)
obs-bench: $(OBS_BENCH)
	$(Q)taskset -c 1 ./$(OBS_BENCH) 2>/dev/null || ./$(OBS_BENCH)

## e2e-runtime-api: the runtime API (token, add/remove, weight, drain under load, maint) through real lbproxy
$(eval $(call PYTEST_SUITE,e2e-runtime-api,tests/e2e/test_runtime_api.py,$(LBPROXY) $(LBBACKEND)))
