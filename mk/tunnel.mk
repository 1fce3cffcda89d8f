# WebSocket and Upgrade tunnels (SS_TUNNEL, src/session_tunnel.c) through
# ./lbproxy to ./lbbackend's /ws echo endpoint.

## e2e-tunnel: WebSocket/Upgrade tunnels: frames both ways, 1 MiB echoed, half-close, idle timeout, no pooling, bounded memory, h2c refused
$(eval $(call PYTEST_SUITE,e2e-tunnel,tests/e2e/test_tunnel.py,$(LBPROXY) $(LBBACKEND)))
