"""Observability through the real ./lbproxy: every request becomes exactly one
CSV row whose per-backend counts equal what the backends served, the admin
API and the Prometheus counters agree with the log, SIGUSR1 rotates the log
without losing rows, a real Prometheus server scrapes /metrics, and the
admin listener serves the dashboard and its npm libraries."""
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from conftest import ROOT
from httpc import Conn, get
from lbtest import free_port, wait_port

HEADER = ("timestamp,client,method,path,backend_id,backend_addr,status,"
          "req_bytes,resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,"
          "reused,mode,conn_model,retries,error,hedge,request_id,"
          "tls_version,tls_cipher,tls_resumed,tls_handshake_ms,pool")
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
MS = re.compile(r"^\d+\.\d{3}$")


def backend_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats",
                                timeout=5) as r:
        return json.loads(r.read())


def read_rows(path):
    """Header and rows of a CSV log (only complete lines)."""
    if not os.path.exists(path):
        return None, []
    with open(path, newline="") as f:
        data = f.read()
    data = data[:data.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(data)))
    return (rows[0] if rows else None), rows[1:]


def wait_rows(path, n, timeout=10.0):
    """Polls until the log holds n rows (they are flushed within 1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        header, rows = read_rows(path)
        if len(rows) >= n:
            return header, rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(rows)} rows in {path}, want {n}")
        time.sleep(0.05)


def stack(procs, tmp_path, mode="round-robin", model="--persistent",
          profiles=("fixed:1ms", "fixed:2ms", "fixed:3ms")):
    bes = [procs.backend(bid=chr(ord("A") + i), extra=["--profile", p])
           for i, p in enumerate(profiles)]
    admin = free_port()
    log = str(tmp_path / "requests.csv")
    px = procs.proxy([b.port for b in bes], admin=admin,
                     extra=["--mode", mode, model, "--log", log])
    wait_port(admin, proc=px)
    px.admin = admin
    px.log = log
    return bes, px


def test_csv_rows_match_backend_counts_and_admin_counters(procs, tmp_path):
    bes, px = stack(procs, tmp_path)
    before = [backend_stats(b.port)["requests"] for b in bes]
    n = 150
    paths = ["/plain", "/a,b", "/q?x=1&y=2,3", "/%22quoted%22"]
    with Conn(px.port) as c:
        for i in range(n):
            assert c.request("GET", paths[i % len(paths)]).status == 200
    with Conn(px.port) as c:  # one request lbproxy answers itself
        c.send(b"GET / HTTP/1.1\r\nContent-Length: 1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        assert c.read().status == 400

    header, rows = wait_rows(px.log, n + 1)
    assert ",".join(header) == HEADER
    assert len(rows) == n + 1
    served = [backend_stats(b.port)["requests"] - b0
              for b, b0 in zip(bes, before)]
    by_id = {bid: sum(1 for r in rows if r[4] == bid) for bid in "ABC"}
    assert [by_id[b] for b in "ABC"] == served, (by_id, served)
    assert sum(served) == n

    ok = [r for r in rows if r[17] == ""]
    bad = [r for r in rows if r[17] != ""]
    assert len(ok) == n and len(bad) == 1
    assert bad[0][17] == "bad_request" and bad[0][6] == "400"
    assert bad[0][4] == "" and bad[0][5] == ""
    assert sorted({r[3] for r in ok}) == sorted(paths)
    for r in ok:
        datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert len(r[0]) == len("2026-11-25T14:03:01.123456Z")
        assert r[2] == "GET" and r[6] == "200"
        assert r[5] == f"127.0.0.1:{bes['ABC'.index(r[4])].port}"
        for col in (10, 11, 12):
            assert MS.match(r[col]), r
        assert r[9] == "" or MS.match(r[9])
        assert r[13] in ("0", "1") and r[14] == "round-robin"
        assert r[15] == "persistent" and r[16] == "0"
        # The backend's fixed latency shows in upstream_ms.
        want = 1 + "ABC".index(r[4])
        assert float(r[11]) >= want * 0.9, r
    # Persistent: after the first request per backend, connections are
    # reused.
    assert sum(r[13] == "1" for r in ok) >= n - 3 * 2

    # The admin API and the metrics count the same requests.
    d = json.loads(get(px.admin, "/api/stats").body)
    assert d["total"]["requests"] == n + 1
    assert d["total"]["errors"] == 1
    assert [b["requests"] for b in d["backends"]] == served
    assert [b["id"] for b in d["backends"]] == ["A", "B", "C"]
    for i, b in enumerate(d["backends"]):
        if b["requests"]:
            assert b["latency_ms"]["mean"] >= (i + 1) * 0.9
    m = get(px.admin, "/metrics").body.decode()
    for bid, cnt in zip("ABC", served):
        assert f'lbproxy_requests_total{{backend="{bid}"}} {cnt}\n' in m
    assert 'lbproxy_requests_total{backend="none"} 1\n' in m
    assert 'lbproxy_errors_total{backend="none",kind="bad_request"} 1\n' in m
    if PROMTOOL:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=m.encode(),
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
    # The log is listed and served by the admin listener.
    assert get(px.admin, "/logs/").status == 200  # logs_dir may differ


def test_sigusr1_reopens_the_log(procs, tmp_path):
    bes, px = stack(procs, tmp_path, profiles=("fixed:0ms",))
    with Conn(px.port) as c:
        for _ in range(10):
            assert c.request().status == 200
    wait_rows(px.log, 10)
    moved = px.log + ".1"
    os.rename(px.log, moved)
    px.send_signal(signal.SIGUSR1)
    wait_for_file = time.monotonic() + 10
    while not os.path.exists(px.log):  # reopened by the signal handler
        assert time.monotonic() < wait_for_file, "log not reopened"
        time.sleep(0.02)
    with Conn(px.port) as c:
        for _ in range(5):
            assert c.request().status == 200
    header, rows = wait_rows(px.log, 5)
    assert ",".join(header) == HEADER and len(rows) == 5
    header, rows = read_rows(moved)
    assert ",".join(header) == HEADER and len(rows) == 10
    # SIGTERM flushes: nothing buffered is lost at exit.
    with Conn(px.port) as c:
        for _ in range(3):
            assert c.request().status == 200
    assert procs.stop(px) == 0
    assert len(read_rows(px.log)[1]) == 8


def test_default_log_is_a_new_file_per_run_with_latest_link(procs,
                                                             tmp_path):
    """Without --log every start writes its own timestamped file in
    logs_dir, latest.csv follows the newest, and /logs/ lists newest first;
    an explicit --log FILE is appended to by every run."""
    be = procs.backend(bid="A", extra=["--profile", "fixed:0ms"])
    logs = tmp_path / "logs"
    logs.mkdir()
    explicit = str(tmp_path / "fixed.csv")
    names = []
    for run in range(2):
        admin = free_port()
        px = procs.proxy([be.port], admin=admin,
                         extra=["--log", "", "--mode", "least-conn",
                                "--set", f"proxy.logs_dir={logs}"])
        wait_port(admin, proc=px)
        with Conn(px.port) as c:
            for _ in range(run + 2):
                assert c.request().status == 200
        assert procs.stop(px) == 0
        runs = sorted(n for n in os.listdir(logs) if n != "latest.csv")
        assert len(runs) == run + 1, runs
        names = runs
        assert os.readlink(logs / "latest.csv") == runs[-1]
        assert re.fullmatch(r"least-conn_persistent-\d{8}-\d{6}\.csv",
                            runs[-1])
        assert len(read_rows(str(logs / "latest.csv"))[1]) == run + 2
        # The next start must fall in a later second to get a new name.
        t = int(time.time())
        while int(time.time()) == t:
            time.sleep(0.05)
    assert [len(read_rows(str(logs / n))[1]) for n in names] == [2, 3]
    for run in range(2):
        px = procs.proxy([be.port], extra=["--log", explicit])
        with Conn(px.port) as c:
            assert c.request().status == 200
        assert procs.stop(px) == 0
    header, rows = read_rows(explicit)
    assert ",".join(header) == HEADER and len(rows) == 2
    # The admin's list: newest first (latest.csv shares the newest mtime).
    os.utime(logs / names[0], (1, 1))
    admin = free_port()
    px = procs.proxy([be.port], admin=admin,
                     extra=["--set", f"proxy.logs_dir={logs}"])
    wait_port(admin, proc=px)
    listed = [f["name"] for f in
              json.loads(get(admin, "/logs/?format=json").body)["files"]]
    assert sorted(listed[:2]) == sorted(["latest.csv", names[1]])
    assert listed[2:] == [names[0]]


def test_non_persistent_rows_say_so(procs, tmp_path):
    bes, px = stack(procs, tmp_path, mode="least-conn",
                    model="--non-persistent", profiles=("fixed:0ms",) * 2)
    with Conn(px.port) as c:
        for _ in range(6):
            assert c.request().status == 200
    _, rows = wait_rows(px.log, 6)
    assert {r[15] for r in rows} == {"non_persistent"}
    assert {r[13] for r in rows} == {"0"}  # never a pooled connection
    assert all(MS.match(r[9]) for r in rows)  # a connect every time
    d = json.loads(get(px.admin, "/api/stats").body)
    assert d["persistent"] is False and d["mode"] == "least-conn"


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed")
def test_prometheus_scrapes_metrics(procs, tmp_path):
    bes, px = stack(procs, tmp_path, profiles=("fixed:0ms",))
    with Conn(px.port) as c:
        for _ in range(7):
            assert c.request().status == 200
    prom_port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: lbproxy\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{px.admin}']\n")
    procs.start([PROMETHEUS, f"--config.file={cfg}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                name="prometheus")
    wait_port(prom_port, timeout=30)

    def query(q):
        url = (f"http://127.0.0.1:{prom_port}/api/v1/query?query="
               + urllib.request.quote(q))
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())["data"]["result"]

    deadline = time.monotonic() + 60
    while True:
        try:  # 503 until the TSDB is ready
            res = query('lbproxy_requests_total{backend="A"}')
        except urllib.error.HTTPError:
            res = None
        if res:
            break
        assert time.monotonic() < deadline, "no sample scraped"
        time.sleep(0.3)
    assert res[0]["value"][1] == "7"
    assert query('up{job="lbproxy"}')[0]["value"][1] == "1"
    res = query('lbproxy_request_duration_seconds_count{backend="A"}')
    assert res[0]["value"][1] == "7"


def test_dashboard_and_vendor_served(procs, tmp_path):
    bes, px = stack(procs, tmp_path, profiles=("fixed:0ms",))
    r = get(px.admin, "/")
    if not os.path.exists(os.path.join(ROOT, "dashboard", "index.html")):
        pytest.skip("no dashboard/index.html")
    assert r.status == 200 and r.header("content-type").startswith("text/html")
    srcs = re.findall(rb'(?:src|href)="(/vendor/[^"]+)"', r.body)
    if not os.path.isdir(os.path.join(ROOT, "node_modules")):
        pytest.skip("node_modules not installed (npm ci)")
    for s in srcs:
        assert get(px.admin, s.decode()).status == 200, s
    s = socket.create_connection(("127.0.0.1", px.admin), timeout=5)
    s.sendall(b"GET /../Makefile HTTP/1.1\r\nHost: t\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()


def test_stats_follow_the_backend_set_across_a_reload(procs, tmp_path):
    # SIGHUP with a different set (A, B -> B, C): /api/stats and /metrics
    # list the new set, B keeps its counts, C starts from zero, A's are gone
    # from the backends but stay in the total.
    a, b, cc = (procs.backend(bid=x) for x in "ABC")
    ini = tmp_path / "lb.ini"
    ini.write_text("[proxy]\nmode = round-robin\n[backends]\n"
                   f"A = 127.0.0.1:{a.port}\nB = 127.0.0.1:{b.port}\n")
    port, admin = free_port(), free_port()
    from conftest import LBPROXY
    px = procs.start([LBPROXY, "--config", str(ini), "--listen",
                      f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
                      "--log", "off"], port=port)
    wait_port(admin, proc=px)
    seen = {"A": 0, "B": 0, "C": 0}
    with Conn(port) as c:
        for _ in range(10):
            seen[c.request().header("x-backend-id")] += 1
    assert seen == {"A": 5, "B": 5, "C": 0}
    ini.write_text("[proxy]\nmode = round-robin\n[backends]\n"
                   f"B = 127.0.0.1:{b.port}\nC = 127.0.0.1:{cc.port}\n")
    px.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    with Conn(port) as c:
        while seen["C"] == 0:  # until the new set serves
            assert time.monotonic() < deadline, "reload never took effect"
            seen[c.request().header("x-backend-id")] += 1
            time.sleep(0.01)
        for _ in range(6):
            seen[c.request().header("x-backend-id")] += 1
    total = sum(seen.values())
    d = json.loads(get(admin, "/api/stats").body)
    assert [x["id"] for x in d["backends"]] == ["B", "C"]
    assert [x["requests"] for x in d["backends"]] == [seen["B"], seen["C"]]
    assert d["total"]["requests"] == total
    m = get(admin, "/metrics").body.decode()
    assert f'lbproxy_requests_total{{backend="B"}} {seen["B"]}\n' in m
    assert f'lbproxy_requests_total{{backend="C"}} {seen["C"]}\n' in m
    assert 'backend="A"' not in m
