"""Framing benchmark, Python side: the asyncio equivalent of frames.rhai.

A length-prefixed echo server and CONNS client coroutines in one process,
each doing request/reply round trips of 100-byte frames (struct '!I'
prefix, StreamReader.readexactly) for SECONDS. Prints
`round_trips=N seconds=S`.

Run: python3 bench/framing/frames_asyncio.py CONNS SECONDS
"""

import asyncio
import socket
import struct
import sys
import time

HEAD = struct.Struct("!I")


async def recv_frame(reader):
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    (n,) = HEAD.unpack(head)
    return await reader.readexactly(n)


async def handle(reader, writer):
    while True:
        frame = await recv_frame(reader)
        if frame is None:
            break
        writer.write(HEAD.pack(len(frame)) + frame)
        await writer.drain()
    writer.close()


async def client(port, start, seconds, payload):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 0
    while time.monotonic() - start < seconds:
        for _ in range(100):
            writer.write(HEAD.pack(len(payload)) + payload)
            await writer.drain()
            reply = await recv_frame(reader)
            if len(reply) != 100:
                raise RuntimeError("short reply")
        n += 100
    writer.close()
    await writer.wait_closed()
    return n


async def main(conns, seconds):
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    start = time.monotonic()
    counts = await asyncio.gather(*(client(port, start, seconds, b"a" * 100) for _ in range(conns)))
    print(f"round_trips={sum(counts)} seconds={time.monotonic() - start}")
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
