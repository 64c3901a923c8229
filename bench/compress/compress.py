"""Compression benchmark, Python side: the same rows as compress.rhai with
the `zlib` module and the `zstandard` package (C extension).
Prints one `row NAME SECONDS OUTPUT_BYTES` per row.

Run: python3 bench/compress/compress.py DATA_FILE REPS
"""

import sys
import time
import zlib

import zstandard

CHUNK = 65536


def chunks(data):
    return [data[at:at + CHUNK] for at in range(0, len(data), CHUNK)]


def streaming(s, pieces, feed):
    t = time.perf_counter()
    out = [feed(s, p) for p in pieces]
    out.append(s.flush())
    secs = time.perf_counter() - t
    return secs, b"".join(out)


ONE_SHOT = {
    "zlib compress": lambda d: zlib.compress(d, 6),
    "zlib decompress": zlib.decompress,
    "zstd compress": lambda d: zstandard.ZstdCompressor(level=3).compress(d),
    "zstd decompress": lambda d: zstandard.ZstdDecompressor().decompress(d),
}
STREAMS = {
    "zlib stream compress": (lambda: zlib.compressobj(6), lambda s, p: s.compress(p)),
    "zlib stream decompress": (zlib.decompressobj, lambda s, p: s.decompress(p)),
    "zstd stream compress": (lambda: zstandard.ZstdCompressor(level=3).compressobj(), lambda s, p: s.compress(p)),
    "zstd stream decompress": (lambda: zstandard.ZstdDecompressor().decompressobj(), lambda s, p: s.decompress(p)),
}


def row(op, arg, reps):
    best = None
    for _ in range(reps):
        if op in STREAMS:
            make, feed = STREAMS[op]
            secs, out = streaming(make(), arg, feed)
        else:
            t = time.perf_counter()
            out = ONE_SHOT[op](arg)
            secs = time.perf_counter() - t
        best = secs if best is None else min(best, secs)
    print(f"row {op.replace(' ', '_')} {best} {len(out)}", flush=True)
    return out


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    reps = int(sys.argv[2])
    pieces = chunks(data)
    for codec in ("zlib", "zstd"):
        packed = row(f"{codec} compress", data, reps)
        if row(f"{codec} decompress", packed, reps) != data:
            sys.exit(f"{codec}: round trip differs")
        streamed = row(f"{codec} stream compress", pieces, reps)
        if row(f"{codec} stream decompress", chunks(streamed), reps) != data:
            sys.exit(f"{codec}: streaming round trip differs")


main()
