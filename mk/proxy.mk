# The proxy core's end-to-end tests (real ./lbproxy and ./lbbackend).

## e2e-proxy: end-to-end tests of forwarding, framing, errors, drain, pools
$(eval $(call PYTEST_SUITE,e2e-proxy,tests/e2e/test_proxy.py,$(LBPROXY) $(LBBACKEND)))

.PHONY: demo
## demo: build, start three backends, lbproxy (adaptive_ewma, persistent), dashboard and a light load
demo:
	$(Q)scripts/demo.sh
