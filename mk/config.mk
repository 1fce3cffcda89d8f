# Configuration checks beyond the unit test (tests/unit/test_config.c): the
# shipped INI through the real binary, and the systemd unit's syntax when
# systemd-analyze is available (the binary path is swapped for /bin/true,
# since the unit names the installed /usr/local/bin/lbproxy).

.PHONY: config-check

## config-check: lbproxy --check on config/lbproxy.ini; verify config/lbproxy.service
config-check: $(LBPROXY)
	$(Q)./$(LBPROXY) --check --config config/lbproxy.ini >/dev/null
	$(Q)if command -v systemd-analyze >/dev/null 2>&1; then \
	    tmp=$$(mktemp -d) && \
	    sed 's#/usr/local/bin/lbproxy#/bin/true#' config/lbproxy.service \
	        >$$tmp/lbproxy.service && \
	    systemd-analyze verify --man=no $$tmp/lbproxy.service; \
	    rc=$$?; rm -rf $$tmp; exit $$rc; \
	else \
	    echo "config-check: no systemd-analyze; unit not verified"; \
	fi
