#!/usr/bin/env python3
"""Echo benchmark: netscript against native tokio, Node, Python asyncio and
Python threads, side by side on loopback. Run through `bench/run echo`
(which builds the release binaries first).

Parts (`bench/run echo [throughput] [idle] [startup] [tls] [workers]`,
default the first three):
  throughput  closed-loop echo, 64-byte messages, at 50 and 1000 connections
  workers     the same on both cores: `netscript run --workers 2` against a
              native tokio server on a 2-thread runtime (goal: >= 0.8x at
              1000 connections); the load generator shares the machine, so
              the CPU use of each side is printed
  tls         the same over TLS 1.3 (netscript's scripts/tls_echo_server.rhai,
              Node `tls`, Python asyncio with `ssl`), then full TLS 1.3
              handshakes per second (a new connection per request)
  idle        10,000 idle connections held open while 50 connections echo;
              the netscript server's VmRSS
  startup     wall time of a hello-world run (netscript, python3, node)

Settings come from the environment: BENCH_WARM / BENCH_MEASURE (seconds,
default 3 / 10), BENCH_CONNS (default "50,1000"), BENCH_SERVERS (names,
default all), BENCH_IDLE (default 10000), BENCH_LOADGEN_THREADS (default 1),
BENCH_PIN ("0,1" pins the server to CPU 0 and the load generator to CPU 1;
default: both free to use both cores), BENCH_QUIET_WAIT (seconds to wait
for other processes to go quiet before each measurement, default 30),
BENCH_ROUNDS (interleaved rounds of every server, default 3; the figures
are medians over the rounds), BENCH_BASELINE (path of another netscript
binary, measured as "netscript-base" in the same rounds).
Results go to standard output and to target/bench/echo.json.
"""

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RELEASE = os.path.join(ROOT, "target", "release")
NETSCRIPT = os.path.join(RELEASE, "netscript")
LOADGEN = os.path.join(RELEASE, "echo-bench")
SERVERS_DIR = os.path.join(ROOT, "bench", "echo", "servers")

WARM = float(os.environ.get("BENCH_WARM", "3"))
MEASURE = float(os.environ.get("BENCH_MEASURE", "10"))
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "50,1000").split(",")]
IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
LOADGEN_THREADS = os.environ.get("BENCH_LOADGEN_THREADS", "1")
# "0,1": server pinned to CPU 0, load generator to CPU 1; empty: both float.
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PIN = [c for c in os.environ.get("BENCH_PIN", "").split(",") if c]

SERVERS = {
    "netscript": [NETSCRIPT, "run", os.path.join(ROOT, "scripts", "echo_server.rhai"), "{port}"],
    "native": [LOADGEN, "serve", "{port}"],
    "node": ["node", os.path.join(SERVERS_DIR, "node_echo.js"), "{port}"],
    "py-asyncio": [sys.executable, os.path.join(SERVERS_DIR, "py_asyncio_echo.py"), "{port}"],
    "py-threads": [sys.executable, os.path.join(SERVERS_DIR, "py_threads_echo.py"), "{port}"],
}
# BENCH_BASELINE=PATH adds "netscript-base": another netscript binary (an
# earlier build, say) running the same script, measured in the same rounds.
BASELINE = os.environ.get("BENCH_BASELINE", "")
if BASELINE:
    SERVERS["netscript-base"] = [BASELINE] + SERVERS["netscript"][1:]
SELECTED = [s for s in os.environ.get("BENCH_SERVERS", ",".join(SERVERS)).split(",") if s]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in MB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_seconds(pid):
    """User + system CPU seconds of a process and all its threads."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


class Server:
    """A server process started on a free port, ready once it printed its line."""

    def __init__(self, name, servers=None):
        self.name = name
        self.port = free_port()
        cmd = [a.format(port=self.port) for a in (servers or SERVERS)[name]]
        if PIN:
            cmd = ["taskset", "-c", PIN[0]] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "echo server on" not in line:
            self.stop()
            raise RuntimeError(f"{name} did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        # Keep draining its output so a chatty server never blocks on a full pipe.
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=stream.read, daemon=True).start()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def wait_quiet(limit=QUIET_WAIT):
    """Wait (at most `limit` seconds) until the machine is nearly idle: other
    people's builds on a 2-core machine would halve any figure. The `other`
    column shows what still ran during each measurement."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        b0 = busy_seconds()
        time.sleep(1)
        if busy_seconds() - b0 < 0.3:
            return


def load(port, conns, idle=0, sample_pid=None, tls_ca=None, mode="load"):
    """Run the load generator; returns its JSON result plus RSS samples of `sample_pid`."""
    wait_quiet()
    cmd = [LOADGEN, mode, "--port", str(port), "--conns", str(conns), "--warm", str(WARM),
           "--measure", str(MEASURE)]
    if mode == "load":
        cmd += ["--idle", str(idle), "--threads", LOADGEN_THREADS]
    if tls_ca:
        cmd += ["--tls", tls_ca]
    if PIN:
        cmd = ["taskset", "-c", PIN[-1]] + cmd
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = busy_seconds()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = []
    cpu0 = cpu_seconds(sample_pid)
    t0 = time.monotonic()
    while proc.poll() is None:
        time.sleep(0.25)
        if sample_pid is not None:
            r = proc_status(sample_pid, "VmRSS")
            if r is not None:
                rss.append(r)
    wall = time.monotonic() - t0
    cpu1 = cpu_seconds(sample_pid)
    busy1 = busy_seconds()
    out, err = proc.communicate()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.strip()}")
    result = json.loads(out)
    result["server_rss_max_mb"] = max(rss) if rss else None
    result["server_hwm_mb"] = proc_status(sample_pid, "VmHWM")
    if cpu0 is not None and cpu1 is not None:
        result["server_cpu"] = (cpu1 - cpu0) / wall
        loadgen = (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime)
        result["loadgen_cpu"] = loadgen / wall
        # Everything else the machine ran meanwhile (other builds, this script).
        result["other_cpu"] = max(0.0, (busy1 - busy0 - loadgen - (cpu1 - cpu0)) / wall)
    return result


def busy_seconds():
    """CPU seconds the whole machine spent not idle since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def ratio(a, b):
    return a / b if a and b else float("nan")


def measure(name, conns, servers=None):
    """One measurement of server `name` at `conns` connections, on a fresh server."""
    srv = Server(name, servers)
    try:
        return load(srv.port, conns, sample_pid=srv.proc.pid)
    finally:
        srv.stop()


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if xs else float("nan")


def throughput(results, servers=None, key="throughput", others=("native", "node", "netscript-base")):
    """ROUNDS interleaved rounds (every server once per round, in turn), so a
    slow spell of the machine hits all servers alike; each row is the round
    with the server's median msgs/s, and each ratio is the median of the
    per-round ratios (netscript against the other server in the same round)."""
    servers = servers or SERVERS
    selected = [n for n in SELECTED if n in servers] or list(servers)
    first = selected[0]  # the netscript server the others are compared with
    for conns in CONNS:
        print(f"\n== closed-loop echo{' (' + key + ')' if key != 'throughput' else ''}, {conns} connections, 64-byte messages, "
              f"{WARM:g}s warm + {MEASURE:g}s measured, {ROUNDS} round(s) ==", flush=True)
        rounds = []
        for k in range(ROUNDS):
            got = {}
            for name in selected:
                try:
                    got[name] = measure(name, conns, servers)
                except RuntimeError as e:
                    print(f"{name:<12} failed: {e}", flush=True)
            rounds.append(got)
            if ROUNDS > 1:
                print(f"round {k + 1}: " + "  ".join(f"{n} {r['msgs_per_s']:,.0f}" for n, r in got.items()),
                      flush=True)
        print(f"{'server':<12} {'msgs/s':>10} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} "
              f"{'srv CPU':>8} {'gen CPU':>8} {'other':>6} {'errors':>6}", flush=True)
        row = results.setdefault(key, {}).setdefault(str(conns), {})
        for name in selected:
            runs = sorted((r[name] for r in rounds if name in r), key=lambda r: r["msgs_per_s"])
            if not runs:
                continue
            r = runs[len(runs) // 2]
            row[name] = dict(r, rounds=[x["msgs_per_s"] for x in runs])
            cpu = {k: f"{r[k] * 100:.0f}%" if r.get(k) is not None else "?"
                   for k in ("server_cpu", "loadgen_cpu", "other_cpu")}
            print(f"{name:<12} {r['msgs_per_s']:>10,.0f} {r['p50_us']:>8} {r['p99_us']:>8} "
                  f"{r['p999_us']:>9} {cpu['server_cpu']:>8} {cpu['loadgen_cpu']:>8} {cpu['other_cpu']:>6} "
                  f"{r['errors']:>6}", flush=True)
        for other in others:
            per_round = [ratio(r[first]["msgs_per_s"], r[other]["msgs_per_s"])
                         for r in rounds if first in r and other in r]
            if per_round:
                spread = ", ".join(f"{x:.2f}" for x in per_round)
                print(f"{first} / {other}: {median(per_round):.2f} (rounds: {spread})", flush=True)
                row[f"ratio_{other}"] = median(per_round)


def workers(results):
    """Both cores: netscript with two host threads (SO_REUSEPORT spreads the
    connections) against native tokio on a two-thread runtime."""
    servers = {
        "netscript-2w": [NETSCRIPT, "run", "--workers", "2", os.path.join(ROOT, "scripts", "echo_server.rhai"),
                         "{port}"],
        "native-2t": [LOADGEN, "serve", "{port}", "--threads", "2"],
    }
    throughput(results, servers, key="workers", others=("native-2t",))


def idle(results):
    print(f"\n== netscript: {IDLE} idle connections held open + 50 echoing ==", flush=True)
    srv = Server("netscript")
    try:
        base = proc_status(srv.proc.pid, "VmRSS")
        r = load(srv.port, 50, idle=IDLE, sample_pid=srv.proc.pid)
    finally:
        srv.stop()
    r["server_rss_start_mb"] = base
    results["idle"] = r
    print(f"msgs/s {r['msgs_per_s']:,.0f}  p99 {r['p99_us']} µs  errors {r['errors']}  "
          f"server VmRSS {base:.1f} MB at start, {r['server_rss_max_mb']:.1f} MB max "
          f"(VmHWM {r['server_hwm_mb']:.1f} MB)  goal <= 200 MB", flush=True)


def startup(results):
    hello = os.path.join(ROOT, "bench", "echo", "hello.rhai")
    cmds = {
        "netscript": f"{NETSCRIPT} run {hello}",
        "python3": f"{sys.executable} -c 'print(\"hello, world\")'",
        "node": "node -e 'console.log(\"hello, world\")'",
    }
    print("\n== hello-world start-up, wall time ==", flush=True)
    out = {}
    for name, cmd in cmds.items():
        if shutil.which("hyperfine"):
            path = os.path.join(ROOT, "target", "bench", f"startup-{name}.json")
            subprocess.run(["hyperfine", "-N", "--warmup", "5", "--runs", "50", "--export-json", path, cmd],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(path) as f:
                h = json.load(f)["results"][0]
            out[name] = {"mean_ms": h["mean"] * 1000, "stddev_ms": h["stddev"] * 1000, "min_ms": h["min"] * 1000}
        else:
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - t0)
            out[name] = {"mean_ms": sum(times) / len(times) * 1000, "stddev_ms": None,
                         "min_ms": min(times) * 1000}
        o = out[name]
        print(f"{name:<10} mean {o['mean_ms']:.1f} ms  min {o['min_ms']:.1f} ms", flush=True)
    print("goal: netscript <= 10 ms", flush=True)
    results["startup"] = out


def tls_files():
    """A CA and a leaf for localhost it signs, made by the openssl CLI."""
    d = os.path.join(ROOT, "target", "bench", "tls")
    os.makedirs(d, exist_ok=True)
    ca, leaf, key = (os.path.join(d, n) for n in ("ca.pem", "leaf.pem", "leaf.key"))
    if not os.path.exists(key):
        def run(*args):
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "365", "-subj", "/CN=bench CA")
        run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
        with open(os.path.join(d, "leaf.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "365", "-extfile", "leaf.ext")
    return ca, leaf, key


def tls(results):
    """TLS echo at each connection count, then full handshakes per second,
    ROUNDS interleaved rounds each; ratios are netscript against Node."""
    ca, cert, key = tls_files()
    servers = {
        "netscript": [NETSCRIPT, "run", os.path.join(ROOT, "scripts", "tls_echo_server.rhai"), "{port}", cert, key],
        "node": ["node", os.path.join(SERVERS_DIR, "node_tls_echo.js"), "{port}", cert, key],
        "py-asyncio": [sys.executable, os.path.join(SERVERS_DIR, "py_asyncio_tls_echo.py"), "{port}", cert, key],
    }
    # BENCH_BASELINE is measured by the plain parts only: a baseline build may predate `tls::`.
    names = [n for n in SELECTED if n in servers] or list(servers)
    out = results.setdefault("tls", {})
    for mode, counts, metric in (("load", CONNS, "msgs_per_s"), ("handshakes", [8], "handshakes_per_s")):
        for conns in counts:
            what = f"TLS 1.3 echo, {conns} connections" if mode == "load" else f"full TLS 1.3 handshakes, {conns} loops"
            print(f"\n== {what}, {ROUNDS} round(s) ==", flush=True)
            rounds = []
            for _ in range(ROUNDS):
                got = {}
                for name in names:
                    srv = Server(name, servers)
                    try:
                        got[name] = load(srv.port, conns, sample_pid=srv.proc.pid, tls_ca=ca, mode=mode)
                    except RuntimeError as e:
                        print(f"{name:<12} failed: {e}", flush=True)
                    finally:
                        srv.stop()
                rounds.append(got)
            row = out.setdefault(f"{mode}-{conns}", {})
            for name in names:
                vals = sorted(r[name][metric] for r in rounds if name in r)
                if vals:
                    row[name] = median(vals)
                    errs = sum(r[name]["errors"] for r in rounds if name in r)
                    print(f"{name:<12} {row[name]:>10,.0f} {metric}  errors {errs}", flush=True)
            per_round = [ratio(r["netscript"][metric], r["node"][metric]) for r in rounds if "netscript" in r and "node" in r]
            if per_round:
                row["ratio_node"] = median(per_round)
                print(f"netscript / node: {row['ratio_node']:.2f} (rounds: "
                      f"{', '.join(f'{x:.2f}' for x in per_round)})", flush=True)


def main():
    parts = sys.argv[1:] or ["throughput", "idle", "startup"]
    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "pin": PIN,
               "warm_s": WARM, "measure_s": MEASURE, "loadgen_threads": LOADGEN_THREADS}
    for part in parts:
        {"throughput": throughput, "idle": idle, "startup": startup, "tls": tls, "workers": workers}[part](results)
    with open(os.path.join(ROOT, "target", "bench", "echo.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
