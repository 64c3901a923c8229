#!/usr/bin/env python3
"""Developer-loop benchmarks for netscript (release build):

1. REPL start-to-prompt: time from spawning `netscript repl` in a
   pseudo-terminal until the prompt `> ` is printed.
2. `netscript test` overhead per empty case, against `python3 -m pytest`
   on the same number of empty cases (both: total time for N cases minus
   time for 1 case, divided by N-1).
3. Reload latency: `netscript watch` on a running server; time from the
   file being replaced on disk to the reload message on standard output,
   and to the first reply from the new handler on an established connection.

Usage: python3 bench/dev/dev_bench.py [path/to/netscript]  (default target/release/netscript)
"""
import os, pty, re, select, socket, statistics, subprocess, sys, tempfile, time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/netscript")


def repl_ready(runs=20):
    times = []
    for _ in range(runs):
        hist = tempfile.mktemp()
        t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(BIN, [BIN, "repl", "--history", hist])
        buf = b""
        while b"> " not in buf:
            r, _, _ = select.select([fd], [], [], 5)
            if not r:
                raise SystemExit("repl did not show a prompt")
            buf += os.read(fd, 4096)
        times.append(time.perf_counter() - t0)
        os.write(fd, b"\x04")
        os.waitpid(pid, 0)
        os.close(fd)
    return statistics.median(times)


def run_timed(cmd, cwd):
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def per_case(n=1000, runs=5):
    d = tempfile.mkdtemp()
    for count, name in ((1, "one"), (n, "many")):
        sub = os.path.join(d, name)
        os.mkdir(sub)
        with open(os.path.join(sub, "empty_test.rhai"), "w") as f:
            f.write("".join(f"fn test_{i}() {{}}\n" for i in range(count)))
        with open(os.path.join(sub, "test_empty.py"), "w") as f:
            f.write("".join(f"def test_{i}():\n    pass\n" for i in range(count)))
    out = {}
    for tool, cmd in (("netscript", [BIN, "test", "."]), ("pytest", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "."])):
        one = statistics.median(run_timed(cmd, os.path.join(d, "one")) for _ in range(runs))
        many = statistics.median(run_timed(cmd, os.path.join(d, "many")) for _ in range(runs))
        out[tool] = ((many - one) / (n - 1), one)
    return out


SERVER = """
fn reply(l) { "V " + l }
fn handler(c) { loop { let l = c.recv_line(); if l == () { break } c.send(reply(l) + "\\n"); } }
let s = tcp::listen("127.0.0.1", 0).serve(Fn("handler"));
print(`port ${s.port}`);
s.wait();
"""


def reload_latency(runs=20):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "server.rhai")
    with open(path, "w") as f:
        f.write(SERVER.replace("V ", "v0 "))
    p = subprocess.Popen([BIN, "watch", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    line = p.stdout.readline().decode()
    port = int(re.search(r"port (\d+)", line).group(1))
    conn = socket.create_connection(("127.0.0.1", port))
    f = conn.makefile("rwb")
    to_message, to_reply = [], []
    for i in range(1, runs + 1):
        tmp = path + ".tmp"
        with open(tmp, "w") as out:
            out.write(SERVER.replace("V ", f"v{i} "))
        t0 = time.perf_counter()
        os.rename(tmp, path)
        while b"reloaded" not in p.stdout.readline():
            pass
        to_message.append(time.perf_counter() - t0)
        f.write(b"x\n"); f.flush()
        assert f.readline() == f"v{i} x\n".encode()
        to_reply.append(time.perf_counter() - t0)
        time.sleep(0.1)
    p.kill()
    p.wait()
    return statistics.median(to_message), max(to_message), statistics.median(to_reply)


if __name__ == "__main__":
    print(f"binary: {BIN}")
    print(f"repl start to prompt (median of 20): {repl_ready() * 1000:.1f} ms   (goal <= 50 ms)")
    pc = per_case()
    for tool, (overhead, one) in pc.items():
        print(f"{tool:9s} per empty case: {overhead * 1e6:8.1f} us   (file with 1 case: {one * 1000:.0f} ms total)")
    med, worst, reply = reload_latency()
    print(f"reload: write -> reload message median {med * 1000:.1f} ms, worst {worst * 1000:.1f} ms; "
          f"-> first reply from new code {reply * 1000:.1f} ms   (goal <= 100 ms)")
