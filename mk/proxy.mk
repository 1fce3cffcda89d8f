# The proxy core's end-to-end tests (real ./lbproxy and ./lbbackend).

## e2e-proxy: end-to-end tests of forwarding, framing, errors, drain, pools
$(eval $(call PYTEST_SUITE,e2e-proxy,tests/e2e/test_proxy.py,$(LBPROXY) $(LBBACKEND)))

.PHONY: demo
## demo: build, then play the demo's story (README "What the demo shows") on the live dashboard
demo:
	$(Q)scripts/demo.sh

## e2e-frontdoor: unix:PATH backends (both models, mixed, health), request ids, PROXY protocol in (v1/v2, refusals) and send_proxy out
$(eval $(call PYTEST_SUITE,e2e-frontdoor,tests/e2e/test_frontdoor.py,$(LBPROXY) $(LBBACKEND)))
