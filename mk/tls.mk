# TLS termination (src/tls.c, src/transport_tls.c): the end-to-end suite
# with certificates made at test time and Python ssl, openssl s_client and
# curl as clients; TLS towards backends (src/tls_client.c) with the
# emulator serving TLS (backends/be_tls.c).

## e2e-tls: https through lbproxy: SNI, ALPN, resumption, curl, hostile handshakes, certificate reload
$(eval $(call PYTEST_SUITE,e2e-tls,tests/e2e/test_tls.py,$(LBPROXY) $(LBBACKEND)))

## e2e-backend-tls: TLS towards backends: pooled and resumed connections, verification failures, SNI, hostile handshakes, hedges, health checks, CA reload
$(eval $(call PYTEST_SUITE,e2e-backend-tls,tests/e2e/test_backend_tls.py,$(LBPROXY) $(LBBACKEND)))

.PHONY: tlsbench tlsidle
## tlsbench: https requests/s and CPU per request, lbproxy vs nginx vs HAProxy (keep-alive, close, close with full handshakes; DURATION= ROUNDS=)
tlsbench: all
	$(Q)$(PYTHON) scripts/bench/tlsbench.py -d $(or $(DURATION),10) -r $(or $(ROUNDS),3)

## tlsidle: KiB of RSS per idle TLS connection beside plain ones (N=)
tlsidle: all
	$(Q)$(PYTHON) scripts/bench/tlsidle.py -n $(or $(N),5000)
