# TLS termination (src/tls.c, src/transport_tls.c): the end-to-end suite
# with certificates made at test time and Python ssl, openssl s_client and
# curl as clients.

## e2e-tls: https through lbproxy: SNI, ALPN, resumption, curl, hostile handshakes, certificate reload
$(eval $(call PYTEST_SUITE,e2e-tls,tests/e2e/test_tls.py,$(LBPROXY) $(LBBACKEND)))
