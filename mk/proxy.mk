# The proxy core's end-to-end tests (real ./lbproxy and ./lbbackend).
.PHONY: e2e-proxy
## e2e-proxy: end-to-end tests of forwarding, framing, errors, drain, pools
e2e-proxy: $(LBPROXY) $(LBBACKEND)
	$(Q)cd tests/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider test_proxy.py

TESTS += e2e-proxy

.PHONY: demo
## demo: build, start three backends, lbproxy (adaptive_ewma, persistent), dashboard and a light load
demo:
	$(Q)scripts/demo.sh
