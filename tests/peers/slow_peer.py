"""A slow peer on loopback, for tests of per-call timeouts.

    python3 slow_peer.py drip INTERVAL HEX   send the bytes of HEX to each
                                             connection one at a time, one
                                             every INTERVAL seconds, then idle
    python3 slow_peer.py sink INTERVAL BURST read at most BURST bytes from
                                             each connection every INTERVAL
                                             seconds (a slow reader)

Prints its port on the first line, serves every connection in its own
thread until killed, and never closes a connection first.
"""

import socket
import sys
import threading
import time


def drip(conn, interval, data):
    for i in range(len(data)):
        conn.sendall(data[i : i + 1])
        time.sleep(interval)
    threading.Event().wait()


def sink(conn, interval, burst):
    while True:
        time.sleep(interval)
        got = 0
        conn.setblocking(False)
        try:
            while got < burst:
                chunk = conn.recv(burst - got)
                if not chunk:
                    return
                got += len(chunk)
        except BlockingIOError:
            pass
        conn.setblocking(True)


def main():
    mode, interval, arg = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    serve = {"drip": lambda c: drip(c, interval, bytes.fromhex(arg)), "sink": lambda c: sink(c, interval, int(arg))}[mode]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    conns = []  # kept open until the peer is killed
    while True:
        conn, _ = srv.accept()
        conns.append(conn)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
