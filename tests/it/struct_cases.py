"""Differential cases for netscript's `struct::`, computed by CPython's `struct`.

Prints one JSON object per line:
  {"op": "pack"|"unpack"|"pack_into"|"unpack_from"|"iter_unpack"|"calcsize",
   "fmt": str, "values": [value], "data": hex, "offset": int,
   "ok": bool, "result": value | [value] | hex | int, "back": [value], "error": str}

Values are encoded so they round-trip exactly: {"i": "123"} (ints of any
size, as text), {"f": "<16 hex digits>"} (a double's bits, so NaN payloads,
infinities and -0.0 survive), {"b": bool}, {"y": hex} (bytes), {"s": str},
{"n": null} (None).

Usage: python3 struct_cases.py [seed]
"""

import json
import math
import random
import struct
import sys

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 20240611
rng = random.Random(SEED)

ORDERS = ["", "@", "=", "<", ">", "!"]
STANDARD_CODES = "xcbB?hHiIlLqQefdsp"
NATIVE_CODES = STANDARD_CODES + "nNP"
INT_CODES = "bBhHiIlLqQnNP"
FLOAT_CODES = "efd"
# rust_decimal holds 96-bit magnitudes: big ints stay within that.
BIG = 2**95


def enc(v):
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"f": "%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]}
    if isinstance(v, (bytes, bytearray)):
        return {"y": bytes(v).hex()}
    if isinstance(v, str):
        return {"s": v}
    if v is None:
        return {"n": None}
    raise TypeError(v)


def int_bounds(code, order):
    size = struct.calcsize(order + code)
    if code == "P":
        return -(2**63), 2**64 - 1
    if code in "bhilqn":
        return -(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1
    return 0, 2 ** (8 * size) - 1


def rand_double_bits():
    return struct.unpack("<d", rng.randbytes(8))[0]


def half_tie():
    """A value at, or one ulp either side of, a half-precision rounding tie."""
    m = rng.randint(1024, 2047)
    x = (m + 0.5) * 2.0 ** rng.randint(-24, 5)
    step = rng.choice([0, 0, 1, -1])
    if step:
        x = math.nextafter(x, math.inf if step > 0 else -math.inf)
    return -x if rng.random() < 0.3 else x


SPECIAL_FLOATS = [
    0.0, -0.0, 1.0, -1.5, math.inf, -math.inf, math.nan, -math.nan,
    65504.0, 65519.99, 65520.0, -65520.0, 6e-8, 3e-8, 2.0**-24, 2.0**-25, 1e-8,
    3.4028234663852886e38, 3.4028235677973366e38, 3.4028236e38, -3.5e38, 1e300,
    1.4e-45, 7e-46, 5e-324, 0.1, 1 / 3, 2.0**53 + 1, 123456.789,
]


def rand_float(code):
    r = rng.random()
    if r < 0.2:
        return rng.choice(SPECIAL_FLOATS)
    if r < 0.45:
        return half_tie()
    if r < 0.6:
        return rand_double_bits()
    if r < 0.7:
        return rng.randint(-(2**70), 2**70)  # ints pack into float codes
    if r < 0.73:
        return rng.choice([True, False])
    top = {"e": 5, "f": 39, "d": 300}[code]
    return rng.uniform(-1, 1) * 10.0 ** rng.randint(-top - 4, top)


def rand_int(code, order):
    lo, hi = int_bounds(code, order)
    r = rng.random()
    if r < 0.35:
        return rng.choice([lo, hi, 0, 1, -1 if lo < 0 else 2, lo + 1, hi - 1, hi // 2, hi // 2 + 1])
    if r < 0.4:
        return rng.choice([True, False])
    if r < 0.43:
        return rng.choice([lo - 1, hi + 1, lo - rng.randint(1, 2**40), hi + rng.randint(1, 2**40),
                           rng.randint(-BIG, BIG)])
    return rng.randint(lo, hi)


def rand_bytes(n):
    return rng.randbytes(max(0, n))


WRONG_TYPES = [1.5, -0.0, math.nan, "7", None, b"\x01", 3]


def rand_value(code, count, order):
    """A value for one item: mostly fitting, sometimes wrong."""
    wrong = rng.random() < 0.02
    if code in INT_CODES:
        if wrong:
            return rng.choice([1.0, 2.5, "1", None, b"\x00", math.inf])
        return rand_int(code, order)
    if code in FLOAT_CODES:
        if wrong:
            return rng.choice(["1.0", None, b"\x00"])
        return rand_float(code)
    if code == "?":
        return rng.choice([True, False, 0, 1, -5, 2**80, 0.0, -0.0, math.nan, 2.5,
                           b"", b"\x00", "", "x", None])
    if code == "c":
        if wrong:
            return rng.choice([b"", b"ab", 65, None, 1.0])
        return rand_bytes(1)
    # s and p: shorter, exact and longer than the count.
    if wrong:
        return rng.choice([5, None, 1.0, True])
    return rand_bytes(rng.choice([0, count, count - 1, count + 1, rng.randint(0, count + 10), 300]))


def rand_count(code):
    if code in "sp":
        r = rng.random()
        if r < 0.6:
            n = rng.randint(0, 12)
        elif r < 0.9:
            n = rng.randint(13, 300)
        else:
            n = rng.choice([254, 255, 256, 257])
        if code == "p" and n == 0:
            # CPython writes a stray length byte past a "0p" item (and fails
            # to unpack one); netscript writes nothing: not compared.
            n = 1
        return str(n)
    return rng.choice(["", "", "", "", "0", "1", "2", "3", str(rng.randint(4, 9))])


def rand_format():
    order = rng.choice(ORDERS)
    codes = NATIVE_CODES if order in ("", "@") else STANDARD_CODES
    parts = []
    for _ in range(rng.choice([1, 1, 2, 3, 4, 6, 8])):
        c = rng.choice(codes)
        parts.append(rng.choice(["", "", "", " ", "\t", "\n "]) + rand_count(c) + c)
    return order + "".join(parts) + rng.choice(["", "", " "])


def items(fmt):
    """(code, count) for each value slot of a valid format."""
    order = fmt[0] if fmt[:1] in ("@", "=", "<", ">", "!") else ""
    body = fmt[len(order):]
    out, i = [], 0
    while i < len(body):
        if body[i].isspace():
            i += 1
            continue
        j = i
        while body[j].isdigit():
            j += 1
        count = int(body[i:j]) if j > i else 1
        code = body[j]
        i = j + 1
        if code in "sp":
            out.append((code, count))
        elif code != "x":
            out.extend([(code, 1)] * count)
    return order, out


def rand_values(fmt):
    order, slots = items(fmt)
    values = [rand_value(code, count, order) for code, count in slots]
    r = rng.random()
    if r < 0.03 and values:
        values.pop(rng.randrange(len(values)))
    elif r < 0.06:
        values.insert(rng.randrange(len(values) + 1), 1)
    return values


def error_text(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def emit(case, thunk):
    try:
        case["result"] = thunk()
        case["ok"] = True
    except Exception as exc:  # every CPython failure is expected to be a pack error
        case["ok"] = False
        case["error"] = error_text(exc)
    print(json.dumps(case))


def unpacked(values):
    return [enc(v) for v in values]


def case_pack(fmt):
    values = rand_values(fmt)
    case = {"op": "pack", "fmt": fmt, "values": [enc(v) for v in values]}

    def run():
        data = struct.pack(fmt, *values)
        case["back"] = unpacked(struct.unpack(fmt, data))
        return data.hex()

    emit(case, run)


def rand_data(size):
    r = rng.random()
    if r < 0.85:
        n = size
    elif r < 0.93:
        n = max(0, size - rng.randint(1, 3))
    else:
        n = size + rng.randint(1, 3)
    return rand_bytes(n)


def case_unpack(fmt):
    data = rand_data(struct.calcsize(fmt))
    emit({"op": "unpack", "fmt": fmt, "data": data.hex()}, lambda: unpacked(struct.unpack(fmt, data)))


def rand_offset(size, length):
    return rng.choice([0, 1, -1, -size, -size - 1, length - size, length - size + 1, -length, -length - 1,
                       rng.randint(-length - 4, length + 4)])


def case_unpack_from(fmt):
    size = struct.calcsize(fmt)
    data = rand_bytes(size + rng.randint(0, 6))
    offset = rand_offset(size, len(data))
    emit({"op": "unpack_from", "fmt": fmt, "data": data.hex(), "offset": offset},
         lambda: unpacked(struct.unpack_from(fmt, data, offset)))


def case_pack_into(fmt):
    size = struct.calcsize(fmt)
    buf = bytearray(rand_bytes(size + rng.randint(0, 6)))
    offset = rand_offset(size, len(buf))
    values = rand_values(fmt)
    case = {"op": "pack_into", "fmt": fmt, "data": buf.hex(), "offset": offset, "values": [enc(v) for v in values]}

    def run():
        struct.pack_into(fmt, buf, offset, *values)
        return buf.hex()

    # After an error CPython leaves the items before the bad one written (and
    # some of the bad one); netscript leaves the blob as it was.
    emit(case, run)


def case_iter_unpack(fmt):
    size = struct.calcsize(fmt)
    n = rng.randint(0, 4) * size + (rng.randint(1, 3) if rng.random() < 0.2 else 0)
    data = rand_bytes(n)
    emit({"op": "iter_unpack", "fmt": fmt, "data": data.hex()},
         lambda: [unpacked(r) for r in struct.iter_unpack(fmt, data)])


def bad_format():
    """A format that is probably invalid."""
    good = rand_format()
    order = good[:1] if good[:1] in ("@", "=", "<", ">", "!") else ""
    body = good[len(order):]
    pos = rng.randint(0, len(body))
    junk = rng.choice([
        "a", "j", "z", "Z", "$", "%", "u", "g", "F", "w", "-", "+", ".", "@", "<", ">", "!", "=",
        "3 i", "12", "9", " 2 h", "é", "n", "N", "P", "2P", "q\x0bq", "\x0ci",
        "99999999999999999999x", "9223372036854775807x", "9223372036854775807s", "4611686018427387904i",
        "9223372036854775800x8x",
    ])
    return order + body[:pos] + junk + body[pos:]


def case_calcsize(fmt):
    emit({"op": "calcsize", "fmt": fmt}, lambda: struct.calcsize(fmt))


def main():
    for _ in range(4000):
        fmt = rand_format()
        case_calcsize(fmt)
        case_pack(fmt)
        case_unpack(fmt)
    for _ in range(800):
        fmt = rand_format()
        case_unpack_from(fmt)
        case_pack_into(fmt)
        case_iter_unpack(fmt)
    for _ in range(600):
        case_calcsize(bad_format())
    # Huge repeat counts: a count is a count, never a list of items, so these
    # cost O(len(format)) (CPython raises MemoryError only when packing a
    # huge pad-only format, which is checked separately).
    for fmt in ["999999999I", "<1000000000000000H", "999999999999999x", "9223372036854775807x",
                "9223372036854775808x", "4611686018427387903H", "4611686018427387904H", "@c9223372036854775806i",
                "2305843009213693951Q", "99999999999999999999999I", "999999999999999999s", "9223372036854775807p",
                "1x9223372036854775807x", "9223372036854775807xc", "!999999999d 3b", "0I0I0I", "1000000I"]:
        case_calcsize(fmt)
        emit({"op": "unpack", "fmt": fmt, "data": "00" * 5}, lambda: unpacked(struct.unpack(fmt, b"\0" * 5)))
        emit({"op": "unpack_from", "fmt": fmt, "data": "00" * 5, "offset": 1},
             lambda: unpacked(struct.unpack_from(fmt, b"\0" * 5, 1)))
        emit({"op": "iter_unpack", "fmt": fmt, "data": "00" * 4},
             lambda: [unpacked(r) for r in struct.iter_unpack(fmt, b"\0" * 4)])
        if not fmt.endswith("x"):
            emit({"op": "pack", "fmt": fmt, "values": [enc(1)]}, lambda: struct.pack(fmt, 1).hex())
    # Native sizes, alignment and the byte orders on fixed formats.
    for fmt in ["@ci", "@cq", "@ce", "@c?P", "@hbi", "@bq0i", "c0i", "=ci", "!IHb", "@3s i", "@ 2p d",
                "@lLnN", "<lL", ">qQ", "iii ", "ii\tx", "0s", "0c", "255p", "256p", "0x"]:
        case_calcsize(fmt)
        case_pack(fmt)
        case_unpack(fmt)


main()
