"""A private network of namespaces for scale-out runs: a client, a router
that owns a virtual IP and spreads new connections over several lbproxy
instances with nftables' numgen DNAT (kube-proxy's nftables mode), one
namespace per instance, and one for the backends.  Everything lives in
namespaces this module creates and deletes; nothing leaves the machine.

    client 10.77.1.2 --- 10.77.1.1 router 10.77.3.1 --- 10.77.3.2 backends
                                   10.77.2.1 (bridge)
                               /                 \\
                   lb1 10.77.2.11      lb2 10.77.2.12  ...

The router forwards between its three links; its nat prerouting rule turns
a new connection to VIP:80 into one to the next instance in turn (numgen
inc), and conntrack keeps every later packet of that connection, both
ways, on the same instance.  The client's address is never rewritten, so
an instance sees the real client as its peer.

Used by tests/e2e/test_scaleout.py and scripts/bench/scaleout.py; it
needs root, `ip` (iproute2) and `nft` (nftables).  Nothing here knows
pytest.
"""
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

VIP = "10.77.0.100"
CLIENT = "10.77.1.2"
BACKENDS = "10.77.3.2"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def instance_addr(i):
    """The address of instance i (0-based) on the router's bridge."""
    return f"10.77.2.{11 + i}"


def unavailable():
    """Why this machine cannot build the network (a sentence), or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs, nftables)"
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables")):
        if not shutil.which(tool):
            return f"`{tool}` is missing (Debian package {pkg})"
    name = "lbt-probe-" + secrets.token_hex(3)
    r = _run(["ip", "netns", "add", name], check=False)
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    try:
        r = _run(["ip", "netns", "exec", name, "nft", "add", "table", "ip",
                  "probe"], check=False)
        if r.returncode != 0:
            return f"nftables does not work here: {r.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", name], check=False)
    return None


def _run(args, check=True, input=None):
    r = subprocess.run(args, capture_output=True, text=True, input=input,
                       timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


class Network:
    """The namespaces, links, routes and the DNAT rule for `instances`
    lbproxy instances.  Names carry a random suffix so that parallel runs
    do not collide; close() deletes them (and so every veth and the
    bridge) after killing every process started with start()."""

    def __init__(self, instances=2):
        tag = secrets.token_hex(3)
        self.router = f"lbt-{tag}-router"
        self.client = f"lbt-{tag}-client"
        self.backends = f"lbt-{tag}-backends"
        self.lbs = [f"lbt-{tag}-lb{i + 1}" for i in range(instances)]
        self.created = []
        self.procs = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ building

    def _ns(self, name):
        _run(["ip", "netns", "add", name])
        self.created.append(name)
        self._ip(name, "link", "set", "lo", "up")

    def _ip(self, ns, *args):
        _run(["ip", "-n", ns] + list(args))

    def _veth(self, ns_a, if_a, ns_b, if_b):
        # Both ends are created directly inside their namespaces, so two
        # runs never meet in the root namespace's interface names.
        _run(["ip", "link", "add", if_a, "netns", ns_a, "type", "veth",
              "peer", "name", if_b, "netns", ns_b])
        self._ip(ns_a, "link", "set", if_a, "up")
        self._ip(ns_b, "link", "set", if_b, "up")

    def _build(self):
        for ns in [self.router, self.client, self.backends] + self.lbs:
            self._ns(ns)
        r = self.router
        self._veth(r, "to-client", self.client, "eth0")
        self._ip(r, "addr", "add", "10.77.1.1/24", "dev", "to-client")
        self._ip(self.client, "addr", "add", CLIENT + "/24", "dev", "eth0")
        self._ip(self.client, "route", "add", "default", "via", "10.77.1.1")
        self._veth(r, "to-backends", self.backends, "eth0")
        self._ip(r, "addr", "add", "10.77.3.1/24", "dev", "to-backends")
        self._ip(self.backends, "addr", "add", BACKENDS + "/24", "dev",
                 "eth0")
        self._ip(self.backends, "route", "add", "default", "via",
                 "10.77.3.1")
        # The instances share one segment, as machines behind one switch.
        self._ip(r, "link", "add", "lbs", "type", "bridge")
        self._ip(r, "addr", "add", "10.77.2.1/24", "dev", "lbs")
        self._ip(r, "link", "set", "lbs", "up")
        for i, ns in enumerate(self.lbs):
            port = f"to-lb{i + 1}"
            self._veth(r, port, ns, "eth0")
            self._ip(r, "link", "set", port, "master", "lbs")
            self._ip(ns, "addr", "add", instance_addr(i) + "/24", "dev",
                     "eth0")
            self._ip(ns, "route", "add", "default", "via", "10.77.2.1")
        _run(["ip", "netns", "exec", r, "sysctl", "-qw",
              "net.ipv4.ip_forward=1"])
        self.set_members(range(len(self.lbs)))

    def set_members(self, members):
        """Points the VIP at these instances (indices), replacing the rule
        in one nftables transaction, as a controller does when an endpoint
        goes or comes: connections already tracked keep their instance,
        new ones are spread over `members` in turn."""
        members = list(members)
        if members:
            m = ", ".join(f"{k} : {instance_addr(i)}"
                          for k, i in enumerate(members))
            action = (f"dnat to numgen inc mod {len(members)} map {{ {m} }}")
        else:
            action = "reject with tcp reset"
        rules = (
            "table ip lbt\n"
            "delete table ip lbt\n"
            "table ip lbt {\n"
            "  chain prerouting {\n"
            "    type nat hook prerouting priority dstnat; policy accept;\n"
            f"    ip daddr {VIP} tcp dport 80 {action}\n"
            "  }\n"
            "}\n")
        _run(["ip", "netns", "exec", self.router, "nft", "-f", "-"],
             input=rules)
        self.members = members

    def ruleset(self):
        """The router's nftables ruleset as `nft list ruleset` prints it."""
        return _run(["ip", "netns", "exec", self.router, "nft", "list",
                     "ruleset"]).stdout

    # ----------------------------------------------------------- processes

    def start(self, ns, args, log_path, cpu=None):
        """Starts args inside namespace ns (optionally pinned to cpu), in
        a session of its own, output to log_path.  `ip netns exec` and
        taskset exec the program, so the pid is the program's own."""
        pre = ["taskset", "-c", str(cpu)] if cpu is not None else []
        log = open(log_path, "ab")
        p = subprocess.Popen(pre + ["ip", "netns", "exec", ns] + list(args),
                             stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        p.log_path = log_path
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=5.0):
        """Signals p and waits for it (SIGKILL after timeout); returns its
        exit status."""
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        return p.returncode

    def wait_listen(self, ns, addr, port, proc=None, timeout=10.0):
        """Polls until addr:port accepts a connection made from inside ns;
        raises RuntimeError if proc exits first, TimeoutError at the
        deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with "
                                   f"{proc.returncode} before listening")
            s = self.socket(ns)
            s.settimeout(0.5)
            try:
                s.connect((addr, port))
                return
            except OSError:
                time.sleep(0.02)
            finally:
                s.close()
        raise TimeoutError(f"nothing listens on {addr}:{port} in {ns}")

    # ------------------------------------------------------------- sockets

    def socket(self, ns):
        """A new TCP socket that belongs to namespace ns.  The calling
        thread enters ns for the socket() call only (setns affects one
        thread); the socket stays in ns for the rest of its life."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns {ns}: {os.strerror(e)}")
            finally:
                os.close(fd)
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    # A thread left in the wrong namespace would quietly
                    # talk to the wrong network: stop here instead.
                    os.abort()
        finally:
            os.close(own)

    # ------------------------------------------------------------ teardown

    def close(self):
        """Kills every process started here, then deletes the namespaces
        (their links go with them).  Safe to call twice."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        for ns in reversed(self.created):
            _run(["ip", "netns", "del", ns], check=False)
        self.created = []
