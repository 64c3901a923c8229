"""Abusive and well-behaved clients of an echo server on loopback, for the
accept-loop tests and the soak test (tests/it/tcp.rs, bench/soak).

    python3 abuse.py reset PORT N      N connections closed with RST (SO_LINGER
                                       0): even ones right after connecting,
                                       odd ones after sending garbage; prints
                                       how many connected
    python3 abuse.py queued PORT N     hold the first connection, open N more
                                       and reset them while the server has not
                                       accepted them yet (a script that serves
                                       after reading a line from the first
                                       one), send that line, then probe once:
                                       prints "ok SECONDS" or "failed ERROR"
    python3 abuse.py hold PORT N SECONDS
                                       open N connections, hold them SECONDS,
                                       close them, then probe once (prints as
                                       `queued` does)
    python3 abuse.py soak PORT PID ROUNDS N
                                       ROUNDS rounds of `reset PORT N` (in a
                                       child process) while this process
                                       probes the server every 1 ms with a new
                                       connection and one echoed line; after
                                       each round waits for the server's fd
                                       count (/proc/PID/fd) to come back.
                                       Prints one JSON object with the figures.

A probe has a 5 s timeout; `soak` reports its latencies in milliseconds.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

LINGER_RST = struct.pack("ii", 1, 0)
PROBE_TIMEOUT = 5.0


def reset(port, n):
    """Prints how many of the connections were established."""
    made = 0
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        try:
            s.connect(("127.0.0.1", port))
            made += 1
            if i % 2:
                s.send(os.urandom(64))
        except OSError:
            pass
        s.close()
    print(made, flush=True)


def probe(port):
    """One well-behaved exchange on a new connection; its seconds."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as s:
        s.sendall(b"probe\n")
        got = b""
        while len(got) < 6:
            chunk = s.recv(64)
            if not chunk:
                raise ConnectionError("closed before the echo")
            got += chunk
    if got != b"probe\n":
        raise ValueError(f"echoed {got!r}")
    return time.perf_counter() - t0


def queued(port, n):
    ctl = socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT)
    held = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        s.connect(("127.0.0.1", port))
        held.append(s)
    for s in held:
        s.close()
    ctl.sendall(b"serve\n")
    ctl.recv(64)  # the server replies once it serves
    try:
        print(f"ok {probe(port):.4f}")
    except Exception as e:  # noqa: BLE001 - the test prints whatever failed
        print(f"failed {type(e).__name__}: {e}")


def hold(port, n, seconds):
    held = [socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) for _ in range(n)]
    time.sleep(seconds)
    for s in held:
        s.close()
    try:
        print(f"ok {probe(port):.4f}")
    except Exception as e:  # noqa: BLE001 - the test prints whatever failed
        print(f"failed {type(e).__name__}: {e}")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None


def soak(port, pid, rounds, n):
    for _ in range(20):  # warm up: the first connections allocate pools
        probe(port)
    result = {"fd_base": fds(pid), "rss_base_mb": rss_mb(pid), "rounds": []}
    latencies, failures = [], []
    for _ in range(rounds):
        attack = subprocess.Popen([sys.executable, __file__, "reset", str(port), str(n)], stdout=subprocess.PIPE)
        t0, peak, lat = time.monotonic(), 0, []
        while attack.poll() is None:
            peak = max(peak, fds(pid))
            try:
                lat.append(probe(port))
            except Exception as e:  # noqa: BLE001 - counted and reported
                failures.append(f"{type(e).__name__}: {e}")
            time.sleep(0.001)
        attack_s = time.monotonic() - t0
        connected = int(attack.stdout.read())
        # The server may still be closing what the attack left.
        settle = time.monotonic()
        while fds(pid) > result["fd_base"] and time.monotonic() - settle < 20:
            time.sleep(0.05)
        latencies += lat
        result["rounds"].append({
            "attack_s": round(attack_s, 3),
            "connected": connected,
            "fd_peak": peak,
            "fd_after": fds(pid),
            "settle_s": round(time.monotonic() - settle, 3),
            "rss_after_mb": rss_mb(pid),
            "probes": len(lat),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 3) if lat else None,
        })
    result.update({
        "connections_per_round": n,
        "probes": len(latencies),
        "failures": failures,
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3),
    })
    print(json.dumps(result))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "reset":
        reset(port, int(sys.argv[3]))
    elif mode == "queued":
        queued(port, int(sys.argv[3]))
    elif mode == "hold":
        hold(port, int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "soak":
        soak(port, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
