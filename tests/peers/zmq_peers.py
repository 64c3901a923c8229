"""pyzmq peers for tests/it/zmq.rs (libzmq, bundled in pyzmq's wheel).

Usage: python3 zmq_peers.py MODE [ARGS...]. Each mode prints the ports it
bound (or "ready") on its first line, then does its part of one ZeroMQ
pattern against the netscript side, and prints what it saw as one JSON line
before it exits.
"""

import json
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

ctx = zmq.Context()


def bound(kind, **opts):
    """A socket of `kind` bound to a free loopback port: (socket, port)."""
    s = ctx.socket(kind)
    for name, value in opts.items():
        s.setsockopt(getattr(zmq, name), value)
    return s, s.bind_to_random_port("tcp://127.0.0.1")


def wait_handshakes(sock, n):
    """Wait until `n` peers finished the ZMTP handshake with `sock`."""
    mon = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    for _ in range(n):
        mon.recv_multipart()
    sock.disable_monitor()


def report(value):
    print(json.dumps(value), flush=True)


def ventilator(workers, count):
    """PUSH `count` numbered tasks to `workers` PULL peers, then one END
    each (round robin gives each worker one); collect the results on a
    PULL sink."""
    workers, count = int(workers), int(count)
    push, push_port = bound(zmq.PUSH)
    sink, sink_port = bound(zmq.PULL)
    print(push_port, sink_port, flush=True)
    wait_handshakes(push, workers)
    for i in range(count):
        push.send_string(str(i))
    for _ in range(workers):
        push.send_string("END")
    report([sink.recv_string() for _ in range(count)])


def subscribers(port, *prefixes):
    """One SUB per prefix on the publisher at `port`; each collects until a
    message "END" (every subscriber subscribes to it too)."""
    subs = []
    for p in prefixes:
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.RCVTIMEO, 20000)
        s.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(p))
        s.setsockopt(zmq.SUBSCRIBE, b"END")
        s.connect("tcp://127.0.0.1:%s" % port)
        subs.append(s)
    print("ready", flush=True)
    seen = []
    for s in subs:
        got = []
        while True:
            parts = s.recv_multipart()
            if parts == [b"END"]:
                break
            got.append([x.hex() for x in parts])
        seen.append(got)
    report(seen)


def publisher(count, subscriptions):
    """PUB that waits for `subscriptions` subscriptions (a subscriber's
    later ones could otherwise arrive after what they ask for was sent),
    then publishes `count` rounds of topics a., b., binary \\x00\\xff and a
    two-part message, then END."""
    pub, port = bound(zmq.XPUB)
    print(port, flush=True)
    for _ in range(int(subscriptions)):
        pub.recv()  # a subscription, as XPUB shows it
    for i in range(int(count)):
        pub.send(b"a.%d" % i)
        pub.send(b"b.%d" % i)
        pub.send(b"\x00\xff%d" % i)
        pub.send_multipart([b"a.multi", b"%d" % i, b""])
    pub.send(b"END")
    # Stay until the subscriber hangs up (its messages are then delivered).
    pub.setsockopt(zmq.RCVTIMEO, 20000)
    try:
        while True:
            pub.recv()
    except zmq.Again:
        pass


def rep(tag, replies):
    """REP that answers `replies` requests with [tag, request parts...];
    `replies` of -1 answers forever."""
    sock, port = bound(zmq.REP)
    print(port, flush=True)
    n = int(replies)
    while n != 0:
        parts = sock.recv_multipart()
        sock.send_multipart([tag.encode()] + parts)
        n -= 1
    time.sleep(30)


def rep_silent():
    """REP that takes a request and never answers."""
    sock, port = bound(zmq.REP)
    print(port, flush=True)
    sock.recv()
    time.sleep(60)


def req(port, count):
    """REQ client: `count` requests, each two parts [i, binary]; checks and
    reports the replies."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    sock.connect("tcp://127.0.0.1:%s" % port)
    print("ready", flush=True)
    replies = []
    for i in range(int(count)):
        sock.send_multipart([b"%d" % i, bytes(range(256)) * (i + 1), b""])
        replies.append([x.hex() if len(x) < 16 else len(x) for x in sock.recv_multipart()])
    report(replies)


def router():
    """ROUTER that answers each DEALER message [parts...] with
    [identity, b"seen", identity, parts...], until a message "END"."""
    sock, port = bound(zmq.ROUTER)
    print(port, flush=True)
    seen = []
    while True:
        parts = sock.recv_multipart()
        ident, body = parts[0], parts[1:]
        seen.append(ident.hex())
        sock.send_multipart([ident, b"seen", ident] + body)
        if body == [b"END"]:
            break
    report(seen)


def dealer(port, identity, count):
    """DEALER with `identity`: sends `count` messages [b"job", i] to the
    ROUTER at `port`, then reports the replies."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, identity.encode())
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    sock.connect("tcp://127.0.0.1:%s" % port)
    print("ready", flush=True)
    for i in range(int(count)):
        sock.send_multipart([b"job", b"%d" % i])
    report([[x.decode() for x in sock.recv_multipart()] for _ in range(int(count))])


def pull(port, count):
    """PULL that receives `count` messages from port `port` (connecting)
    and reports them."""
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    sock.connect("tcp://127.0.0.1:%s" % port)
    print("ready", flush=True)
    report([sock.recv_string() for _ in range(int(count))])


def pull_bound(port, count):
    """PULL bound to `port` (a fixed port, so a restarted one is found
    again) that receives `count` messages and reports them."""
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    sock.bind("tcp://127.0.0.1:%s" % port)
    print(port, flush=True)
    report([sock.recv_string() for _ in range(int(count))])


def pull_until_end(port):
    """PULL bound to `port` that receives until END and reports the rest."""
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    sock.bind("tcp://127.0.0.1:%s" % port)
    print(port, flush=True)
    got = []
    while True:
        m = sock.recv_string()
        if m == "END":
            break
        got.append(m)
    report(got)


def rep_bound(port, tag):
    """REP bound to a fixed `port`, answering [tag] forever."""
    sock = ctx.socket(zmq.REP)
    sock.bind("tcp://127.0.0.1:%s" % port)
    print(port, flush=True)
    while True:
        sock.recv_multipart()
        sock.send(tag.encode())


def push(endpoint, count):
    """PUSH connecting to `endpoint`, sending `count` numbered messages."""
    sock = ctx.socket(zmq.PUSH)
    sock.connect(endpoint)
    print("ready", flush=True)
    for i in range(int(count)):
        sock.send_string(str(i))
    sock.close(linger=20000)
    report("sent")


def sub_stalled(port, joined_port):
    """SUB subscribed to everything that, once it has received a message
    (and said so on a PUSH to `joined_port`), never reads again."""
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.RCVHWM, 10)
    sock.setsockopt(zmq.RCVBUF, 4096)
    sock.connect("tcp://127.0.0.1:%s" % port)
    print("ready", flush=True)
    sock.recv()
    joined = ctx.socket(zmq.PUSH)
    joined.connect("tcp://127.0.0.1:%s" % joined_port)
    joined.send(b"joined")
    time.sleep(60)


def pair_connect(port, count):
    """PAIR connecting to `port`: sends `count` messages [i, binary, b""],
    reads a reply to each and one message more, and reports them."""
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    sock.connect("tcp://127.0.0.1:%s" % port)
    print("ready", flush=True)
    replies = []
    for i in range(int(count)):
        sock.send_multipart([b"%d" % i, bytes(range(256)), b""])
        replies.append([x.hex() for x in sock.recv_multipart()])
    replies.append([x.hex() for x in sock.recv_multipart()])
    report(replies)


def pair_bound(count):
    """PAIR bound to a free port: answers each of `count` messages with
    [b"echo"] + its parts, then sends b"bye"; reports what it received."""
    sock, port = bound(zmq.PAIR, RCVTIMEO=20000)
    print(port, flush=True)
    seen = []
    for _ in range(int(count)):
        parts = sock.recv_multipart()
        seen.append([x.hex() for x in parts])
        sock.send_multipart([b"echo"] + parts)
    sock.send(b"bye")
    sock.close(linger=20000)
    report(seen)


def pair_second(port):
    """Two PAIRs for the one at `port`, which answers each message m with
    b"ack:" + m. A connects and is answered; B connects while A is there
    (its handshake succeeds, then it is disconnected: the monitor shows
    it) and sends b"b:intruder" before A sends b"a:after"; then A leaves
    and B, reconnecting, takes its place."""
    endpoint = "tcp://127.0.0.1:%s" % port
    a = ctx.socket(zmq.PAIR)
    a.setsockopt(zmq.RCVTIMEO, 20000)
    a.connect(endpoint)
    print("ready", flush=True)
    a.send(b"a:hello")
    got_a = [a.recv_string()]
    b = ctx.socket(zmq.PAIR)
    b.setsockopt(zmq.RCVTIMEO, 20000)
    names = {zmq.EVENT_HANDSHAKE_SUCCEEDED: "handshake", zmq.EVENT_DISCONNECTED: "disconnected"}
    mon = b.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    mon.setsockopt(zmq.RCVTIMEO, 20000)
    b.connect(endpoint)
    events = [names[recv_monitor_message(mon)["event"]] for _ in range(2)]
    b.disable_monitor()
    b.send(b"b:intruder")
    a.send(b"a:after")
    got_a.append(a.recv_string())
    b_early = b.poll(300)
    a.close(linger=0)
    b.send(b"b:now")
    got_b = []
    while not got_b or got_b[-1] != "ack:b:now":
        got_b.append(b.recv_string())
    report({"a": got_a, "events": events, "b_early": b_early, "b": got_b})


def pipeline_worker(name, ventilator, sink_url, control):
    """A worker of scripts/zmq_pipeline.rhai: PULLs numbers n from the
    ventilator, PUSHes "result NAME n n*n" to the sink, stops on the sink's
    KILL; reports how many it did."""
    tasks = ctx.socket(zmq.PULL)
    sink = ctx.socket(zmq.PUSH)
    ctl = ctx.socket(zmq.SUB)
    ctl.setsockopt(zmq.SUBSCRIBE, b"KILL")
    monitors = [s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED) for s in (tasks, sink, ctl)]
    tasks.connect(ventilator)
    sink.connect(sink_url)
    ctl.connect(control)
    for mon in monitors:
        mon.recv_multipart()
    print("ready", flush=True)
    sink.send_string("ready " + name)
    poller = zmq.Poller()
    poller.register(tasks, zmq.POLLIN)
    poller.register(ctl, zmq.POLLIN)
    done = 0
    while True:
        ready = dict(poller.poll(60000))
        if not ready or ctl in ready:
            break
        n = int(tasks.recv_string())
        sink.send_string("result %s %d %d" % (name, n, n * n))
        done += 1
    report(done)


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
