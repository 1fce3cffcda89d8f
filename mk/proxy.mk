# The proxy core's end-to-end tests (real ./lbproxy and ./lbbackend).

## e2e-proxy: end-to-end tests of forwarding, framing, errors, drain, pools
$(eval $(call PYTEST_SUITE,e2e-proxy,tests/e2e/test_proxy.py,$(LBPROXY) $(LBBACKEND)))

.PHONY: demo
## demo: build, then play the demo's story (README "What the demo shows") on the live dashboard
demo:
	$(Q)scripts/demo.sh
