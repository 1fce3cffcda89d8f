# The balancer simulator: the real policy code (build/liblb.a, through
# include/balancer.h) against simulated M/G/K backends in virtual time.

SIM_BIN := $(BUILD)/tests/lbsim

SIM_SRC := tests/sim/lbsim.c tests/sim/lbsim_check.c tests/sim/lbsim_probe.c \
           tests/sim/lbsim_report.c tests/sim/lbsim_open.c

$(SIM_BIN): $(SIM_SRC) tests/sim/lbsim.h $(LIBLB)
	@mkdir -p $(dir $@)
	$(call E,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(SIM_SRC) $(LIBLB) $(LDLIBS)

.PHONY: sim sim-report

## sim: run the balancer simulator's asserting checks (capacity, degrade)
sim: $(SIM_BIN)
	$(Q)./$(SIM_BIN) check

## sim-report: print the simulator's table of every policy on every set, closed and open loop
sim-report: $(SIM_BIN)
	$(Q)./$(SIM_BIN) report
	$(Q)./$(SIM_BIN) open
