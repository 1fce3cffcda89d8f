# browser: the dashboard in headless Chromium against the real lbproxy and
# three lbbackends (tests/browser/, Node + playwright-core from npm).

CHROMIUM ?= /usr/bin/chromium
NODE     ?= node
# each file starts its own stack and browser and stays under a minute
BROWSER_TESTS := tests/browser/dashboard.test.mjs tests/browser/replay.test.mjs \
                 tests/browser/pools.test.mjs tests/browser/workers.test.mjs \
                 tests/browser/demo.test.mjs

.PHONY: browser
## browser: run the dashboard's headless Chromium tests (skipped without chromium)
browser: $(LBPROXY) $(LBBACKEND) scripts/demo.sh
	$(Q)if [ ! -x $(CHROMIUM) ]; then \
	    echo "browser: skipped: chromium not installed ($(CHROMIUM))"; \
	elif [ ! -d node_modules/playwright-core ]; then \
	    echo "browser: node_modules/playwright-core missing: run scripts/install-deps.sh (npm ci)" >&2; \
	    exit 1; \
	else \
	    set -e; for t in $(BROWSER_TESTS); do \
	        echo "== browser: $$t"; $(NODE) $$t; \
	    done; \
	fi
