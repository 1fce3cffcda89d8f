# Scale-out: two ./lbproxy instances behind nftables numgen DNAT in network
# namespaces (tests/lib/netns.py, docs/scale-out.md).  The benchmark of the
# same network is `make scaleout` in mk/bench.mk.

## e2e-scaleout: two instances behind an nftables numgen VIP in namespaces: both serve, kill -9 of one loses only its in-flight requests, real client in XFF and PROXY v1 (skipped without root/netns/nft)
$(eval $(call PYTEST_SUITE,e2e-scaleout,tests/e2e/test_scaleout.py,$(LBPROXY) $(LBBACKEND)))
