# DNS for backends by name (issue 16): the resolver (src/resolver.c, c-ares
# on the loop) checked over real sockets through a small harness
# (tests/dns_harness.c: the resolver alone on a loop, one JSON line per
# answer) against a DNS server written here (tests/lib/dnsserver.py) on
# loopback.  The pure part is tests/unit/test_resolver.c (make unit).

DNS_HARNESS := $(BUILD)/tests/dns_harness

$(DNS_HARNESS): tests/dns_harness.c $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBLB) \
	    $(PKG_LIBS) $(LDLIBS)

## e2e-dns: the resolver against a loopback DNS server: A/AAAA/SRV, changes, TTLs, failures, silence, malformed answers
$(eval $(call PYTEST_SUITE,e2e-dns,tests/e2e/test_dns.py,$(DNS_HARNESS) $(LBPROXY),DNS_HARNESS=$(DNS_HARNESS)))

## e2e-discovery: pools of backends by name: an answer change followed under load without failures, silent/NXDOMAIN DNS changes nothing (also across a reload), SRV ports and weights
$(eval $(call PYTEST_SUITE,e2e-discovery,tests/e2e/test_discovery.py,$(LBPROXY) $(LBBACKEND)))
