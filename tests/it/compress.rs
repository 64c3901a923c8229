//! `zlib::`, `gzip::` and `zstd::` against their reference peers: CPython's
//! `zlib`/`gzip` modules and the `zstd` command-line tool, in both
//! directions, one-shot and streaming, plus the bomb limit and corrupt data.
//!
//! Binary data crosses into scripts as `hex::decode("…")` literals and into
//! Python or `zstd` through temporary files.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::util::{eval, eval_limited};

/// Deterministic test data of `len` bytes: text-like runs mixed with
/// pseudo-random bytes, so it compresses some but not trivially.
pub(crate) fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let words: [&[u8]; 5] = [b"GET /index.html ", b"HTTP/1.1 200 OK\r\n", b"netscript ", b"\x00\x01\x02", b"zz"];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let r = (x >> 33) as usize;
        if r.is_multiple_of(3) {
            out.extend_from_slice(words[r % words.len()]);
        } else {
            out.push((r >> 8) as u8);
        }
    }
    out.truncate(len);
    out
}

/// A script expression for the blob `data`.
pub(crate) fn lit(data: &[u8]) -> String {
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    format!("hex::decode(\"{hex}\")")
}

/// Evaluate `code`, expecting a blob.
pub(crate) fn blob(code: &str) -> Vec<u8> {
    eval(code)
        .unwrap_or_else(|e| panic!("script failed: {e}\n{}", &code[..code.len().min(300)]))
        .into_blob()
        .expect("a blob")
}

/// Evaluate `code`, expecting an error; returns `"kind: message"`.
pub(crate) fn fails(code: &str) -> String {
    match eval(code) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// A fresh temporary file path.
pub(crate) fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("netscript-it-{}-{tag}-{n}", std::process::id()))
}

/// Run Python with `inp` (a list of bytes read from files) in scope; `body`
/// sets `out`, a list of bytes, which comes back. Files are removed.
pub(crate) fn py(body: &str, inputs: &[&[u8]]) -> Vec<Vec<u8>> {
    let paths: Vec<PathBuf> = inputs.iter().map(|_| temp_path("py")).collect();
    for (p, data) in paths.iter().zip(inputs) {
        std::fs::write(p, data).expect("write temp file");
    }
    let list: Vec<String> = paths.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    let code = format!(
        "import zlib, gzip, pickle, json, base64, hashlib, hmac\ninp = [open(p, 'rb').read() for p in [{}]]\nout = []\n{body}\nfor o in out: print(o.hex())\n",
        list.join(", ")
    );
    let text = crate::util::python(&code);
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    text.lines()
        .map(|l| (0..l.len()).step_by(2).map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex")).collect())
        .collect()
}

/// Run the `zstd` tool with `args` on `input` (through a file); returns stdout.
fn zstd_cli(args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let path = temp_path("zst");
    std::fs::write(&path, input).expect("write temp file");
    let out = Command::new("zstd").args(args).arg("-c").arg("-q").arg(&path).output().expect("zstd runs");
    let _ = std::fs::remove_file(&path);
    if out.status.success() { Ok(out.stdout) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

const SIZES: [usize; 5] = [0, 1, 100, 5000, 200_000];

#[test]
fn zlib_to_python_all_levels_and_wbits() {
    let mut cases = 0;
    for (i, &size) in SIZES.iter().enumerate() {
        let data = sample(size, i as u64);
        let mut streams = Vec::new();
        let mut checks = Vec::new();
        for level in [-1, 0, 1, 6, 9] {
            for wbits in [15, 9, 12, -15, -9, 31, 25] {
                streams.push(blob(&format!("zlib::compress({}, {level}, {wbits})", lit(&data))));
                checks.push(format!("out.append(zlib.decompress(inp[{}], {wbits}))", checks.len()));
            }
        }
        let refs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
        for back in py(&checks.join("\n"), &refs) {
            assert_eq!(back, data, "size {size}, case {cases}");
            cases += 1;
        }
    }
    assert_eq!(cases, 175);
}

#[test]
fn python_zlib_to_netscript_all_wbits() {
    for (i, &size) in SIZES.iter().enumerate() {
        let data = sample(size, 10 + i as u64);
        // (compress wbits, decompress wbits) pairs Python itself accepts.
        let pairs = [
            (15, 15),
            (15, 0),
            (15, 47),
            (15, 32),
            (10, 10),
            (10, 15),
            (-15, -15),
            (-9, -15),
            (31, 31),
            (31, 47),
            (26, 31),
        ];
        let body = pairs
            .iter()
            .map(|(c, _)| {
                format!("o = zlib.compressobj(7, zlib.DEFLATED, {c}); out.append(o.compress(inp[0]) + o.flush())")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let streams = py(&body, &[&data]);
        for ((c, d), z) in pairs.iter().zip(&streams) {
            let oracle = py(&format!("out.append(zlib.decompress(inp[0], {d}))"), &[z]);
            let ours = blob(&format!("zlib::decompress({}, {d})", lit(z)));
            assert_eq!(ours, oracle[0], "size {size} wbits {c}->{d}");
            assert_eq!(ours, data);
        }
    }
}

#[test]
fn zlib_wbits_8_as_in_python() {
    let data = sample(200, 3);
    // Compressing: zlib writes a 2^9 window header, for Python and for us.
    let ours = blob(&format!("zlib::compress({}, 6, 8)", lit(&data)));
    let theirs = py("out.append(zlib.compress(inp[0], 6, 8))", &[&data]);
    assert_eq!(ours[0], theirs[0][0], "CMF byte");
    assert_eq!(py("out.append(zlib.decompress(inp[0], 15))", &[&ours])[0], data);
    // Decompressing with 8 refuses such a header, in Python and here.
    let refused = py(
        "r = b''\ntry: zlib.decompress(inp[0], 8)\nexcept zlib.error as e: r = str(e).encode()\nout.append(r)",
        &[&ours],
    );
    assert!(String::from_utf8_lossy(&refused[0]).contains("invalid window size"));
    let e = fails(&format!("zlib::decompress({}, 8)", lit(&ours)));
    assert!(e.starts_with("decode: zlib::decompress") && e.contains("invalid window size"), "{e}");
    // A header for 2^8 (CINFO 0) over raw deflate that stays within 256 bytes.
    let small = py(
        "import struct\nd = inp[0][:200]\no = zlib.compressobj(6, zlib.DEFLATED, -9)\nraw = o.compress(d) + o.flush()\nout.append(b'\\x08\\x1d' + raw + struct.pack('!I', zlib.adler32(d)))\nout.append(zlib.decompress(out[0], 8))",
        &[&data],
    );
    assert_eq!(small[1], data, "python reads the 2^8 stream");
    assert_eq!(blob(&format!("zlib::decompress({}, 8)", lit(&small[0]))), data);
    let streamed = blob(&format!(
        "let d = zlib::decompressor(8); let s = {}; let out = blob(); for i in 0..s.len() {{ out += d.feed(s.extract(i, 1)); }} out",
        lit(&small[0])
    ));
    assert_eq!(streamed, data, "fed a byte at a time");
    // wbits 40 detects zlib or gzip with the same 2^8 limit on a zlib header.
    for (stream, name) in [(&small[0], "2^8 zlib"), (&ours, "2^9 zlib")] {
        let python = py(
            "r = b'ok'\ntry: zlib.decompress(inp[0], 40)\nexcept zlib.error: r = b'refused'\nout.append(r)",
            &[stream],
        );
        let code = format!("zlib::decompress({}, 40)", lit(stream));
        let netscript = if eval(&code).is_ok() { b"ok".to_vec() } else { b"refused".to_vec() };
        assert_eq!(netscript, python[0], "{name}");
    }
    let gz = py("import gzip\nout.append(gzip.compress(inp[0]))", &[&data]);
    assert_eq!(blob(&format!("zlib::decompress({}, 40)", lit(&gz[0]))), data, "gzip under wbits 40");
}

#[test]
fn zlib_default_and_string_data() {
    let z = blob(r#"zlib::compress("hello hello hello")"#);
    assert_eq!(py("out.append(zlib.decompress(inp[0]))", &[&z])[0], b"hello hello hello");
    let text = eval(r#"zlib::decompress(zlib::compress("héllo")).as_string()"#).unwrap();
    assert_eq!(text.into_string().unwrap(), "héllo");
}

#[test]
fn bad_wbits_and_levels_are_value_errors_as_in_python() {
    let data = blob(r#"zlib::compress("abc")"#);
    for w in [1, 7, 17, 23, 33, 39, 48, -7, -8, -16] {
        // Python rejects these too, for both directions.
        let rejected = py(
            &format!(
                "r = b''\ntry: zlib.decompress(inp[0], {w})\nexcept zlib.error: r += b'd'\ntry: zlib.compressobj(6, zlib.DEFLATED, {w})\nexcept (ValueError, zlib.error): r += b'c'\nout.append(r)"
            ),
            &[&data],
        );
        assert_eq!(rejected[0], b"dc", "python accepts wbits {w}");
        assert!(fails(&format!("zlib::decompress({}, {w})", lit(&data))).starts_with("value: zlib::decompress"));
        assert!(fails(&format!(r#"zlib::compress("x", 6, {w})"#)).starts_with("value:"));
        assert!(fails(&format!("zlib::decompressor({w})")).starts_with("value:"));
    }
    for level in [-2, 10] {
        let python_rejects =
            py(&format!("r=b''\ntry: zlib.compress(b'x', {level})\nexcept zlib.error: r=b'x'\nout.append(r)"), &[]);
        assert_eq!(python_rejects[0], b"x");
        assert!(fails(&format!(r#"zlib::compress("x", {level})"#)).starts_with("value:"));
    }
}

#[test]
fn gzip_both_ways_with_multiple_members() {
    for (i, &size) in SIZES.iter().enumerate() {
        let data = sample(size, 20 + i as u64);
        for level in [1, 9] {
            let gz = blob(&format!("gzip::compress({}, {level})", lit(&data)));
            assert_eq!(py("out.append(gzip.decompress(inp[0]))", &[&gz])[0], data);
        }
        let gz = blob(&format!("gzip::compress({})", lit(&data)));
        assert_eq!(py("out.append(gzip.decompress(inp[0]))", &[&gz])[0], data);
        // Python-made: one member, and two members with zero padding between.
        let made = py(
            "out.append(gzip.compress(inp[0], 6))\nout.append(gzip.compress(inp[0][:7]) + b'\\0\\0\\0' + gzip.compress(inp[0][7:], 1))",
            &[&data],
        );
        for gz in &made {
            let oracle = py("out.append(gzip.decompress(inp[0]))", &[gz]);
            assert_eq!(blob(&format!("gzip::decompress({})", lit(gz))), oracle[0]);
        }
    }
    assert!(blob(r#"gzip::decompress(blob())"#).is_empty());
    assert_eq!(py("out.append(gzip.decompress(b''))", &[])[0], b"");
}

#[test]
fn gzip_trailing_garbage_is_a_decode_error_as_in_python() {
    let gz = blob(r#"gzip::compress("abc") + "zz".to_blob()"#);
    let python = py("r=b''\ntry: gzip.decompress(inp[0])\nexcept gzip.BadGzipFile: r=b'bad'\nout.append(r)", &[&gz]);
    assert_eq!(python[0], b"bad");
    assert!(fails(&format!("gzip::decompress({})", lit(&gz))).starts_with("decode: gzip::decompress"));
}

#[test]
fn zstd_to_cli_and_back() {
    for (i, &size) in SIZES.iter().enumerate() {
        let data = sample(size, 30 + i as u64);
        for level in [0, 1, 3, 19, -5] {
            let z = blob(&format!("zstd::compress({}, {level})", lit(&data)));
            assert_eq!(zstd_cli(&["-d"], &z).unwrap(), data, "size {size} level {level}");
        }
        for level in ["-1", "-3", "-19", "--fast=3"] {
            let z = zstd_cli(&[level], &data).unwrap();
            assert_eq!(blob(&format!("zstd::decompress({})", lit(&z))), data, "cli level {level}");
        }
        // Two frames back to back, as `cat a.zst b.zst` gives.
        let mut two = zstd_cli(&["-3"], &data).unwrap();
        two.extend(zstd_cli(&["-3"], b"tail").unwrap());
        assert_eq!(zstd_cli(&["-d"], &two).unwrap(), blob(&format!("zstd::decompress({})", lit(&two))));
    }
    assert!(fails("zstd::compress(\"x\", 23)").starts_with("value: zstd::compress"));
    assert!(fails("zstd::decompress(blob())").starts_with("decode: zstd::decompress"));
}

/// Split `data` at `cuts` into chunks, as a script array expression.
fn chunks(data: &[u8], cuts: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain([data.len()].iter()) {
        let c = c.min(data.len()).max(start);
        parts.push(lit(&data[start..c]));
        start = c;
    }
    format!("[{}]", parts.join(", "))
}

/// Feed `data` cut at `cuts` to `ctor`'s decompressor; returns output and
/// `.unused_data`, and checks `.eof`.
fn stream_decompress(ctor: &str, data: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let code = format!(
        "let d = {ctor}; let out = blob(); for c in {} {{ out += d.feed(c); }} out += d.flush(); if !d.eof {{ throw \"no eof\" }} [out, d.unused_data]",
        chunks(data, cuts)
    );
    let result = eval(&code).unwrap_or_else(|e| panic!("{ctor}: {e}"));
    let mut pair = result.into_array().expect("array").into_iter().map(|v| v.into_blob().expect("blob"));
    (pair.next().expect("out"), pair.next().expect("unused"))
}

#[test]
fn streaming_decompress_with_cuts_everywhere_keeps_unused_data() {
    let data = sample(700, 40);
    let tail = b"NEXT MESSAGE";
    let streams = py(
        "o = zlib.compressobj(6, zlib.DEFLATED, -15); out.append(o.compress(inp[0]) + o.flush())\nout.append(zlib.compress(inp[0]))\nout.append(gzip.compress(inp[0]))",
        &[&data],
    );
    let zst = zstd_cli(&["-5"], &data).unwrap();
    let cases = [
        ("zlib::decompressor(-15)", &streams[0]),
        ("zlib::decompressor()", &streams[1]),
        ("zlib::decompressor(47)", &streams[1]),
        ("zlib::decompressor(47)", &streams[2]),
        ("gzip::decompressor()", &streams[2]),
        ("zstd::decompressor()", &zst),
    ];
    for (ctor, stream) in cases {
        let mut wire = stream.clone();
        wire.extend_from_slice(tail);
        // Python's own decompressobj says what unused_data must be.
        if !ctor.starts_with("zstd") {
            let wbits = if ctor.contains("-15") { -15 } else { 47 };
            let oracle = py(
                &format!(
                    "d = zlib.decompressobj({wbits}); out.append(d.decompress(inp[0])); out.append(d.unused_data)"
                ),
                &[&wire],
            );
            assert_eq!(oracle, vec![data.clone(), tail.to_vec()]);
        }
        for cut in 0..=wire.len() {
            assert_eq!(stream_decompress(ctor, &wire, &[cut]), (data.clone(), tail.to_vec()), "{ctor} cut at {cut}");
        }
        let every: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(stream_decompress(ctor, &wire, &every), (data.clone(), tail.to_vec()), "{ctor} byte by byte");
    }
}

#[test]
fn streaming_compress_with_many_chunk_sizes() {
    let data = sample(100_000, 50);
    for step in [1usize, 7, 4096, 100_000] {
        let cuts: Vec<usize> = (step..data.len()).step_by(step).collect();
        let parts = chunks(&data, &cuts);
        let run = |ctor: &str| {
            blob(&format!("let c = {ctor}; let out = blob(); for p in {parts} {{ out += c.feed(p); }} out + c.flush()"))
        };
        for (ctor, wbits) in [
            ("zlib::compressor()", 15),
            ("zlib::compressor(1, -12)", -12),
            ("zlib::compressor(9, 31)", 31),
            ("gzip::compressor()", 31),
        ] {
            let z = run(ctor);
            assert_eq!(
                py(&format!("out.append(zlib.decompress(inp[0], {wbits}))"), &[&z])[0],
                data,
                "{ctor} step {step}"
            );
        }
        let z = run("zstd::compressor(5)");
        assert_eq!(zstd_cli(&["-d"], &z).unwrap(), data, "zstd step {step}");
    }
    assert!(
        fails(r#"let c = zlib::compressor(); c.flush(); c.feed("more")"#).starts_with("value: zlib::compressor.feed")
    );
    assert!(fails(r#"let c = zlib::compressor(); c.flush("bogus")"#).starts_with("value:"));
}

#[test]
fn sync_flush_delivers_each_message_at_once() {
    let msgs = ["first message", "second", "third, a bit longer than the others"];
    for (ctor, wbits) in [("zlib::compressor(6, -15)", -15), ("zlib::compressor()", 15)] {
        let code = format!(
            "let c = {ctor}; let out = []; for m in {msgs:?} {{ out.push(c.feed(m) + c.flush(\"sync\")); }} out"
        );
        let packets: Vec<Vec<u8>> =
            eval(&code).unwrap().into_array().unwrap().into_iter().map(|v| v.into_blob().unwrap()).collect();
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        let got = py(&format!("d = zlib.decompressobj({wbits})\nfor p in inp: out.append(d.decompress(p))"), &refs);
        let want: Vec<Vec<u8>> = msgs.iter().map(|m| m.as_bytes().to_vec()).collect();
        assert_eq!(got, want, "{ctor}");
    }
    // zstd: a sync flush ends a block the CLI can decode once the frame ends.
    let z =
        blob(r#"let c = zstd::compressor(); let a = c.feed("one ") + c.flush("sync"); a + c.feed("two") + c.flush()"#);
    assert_eq!(zstd_cli(&["-d"], &z).unwrap(), b"one two");
}

#[test]
fn decompression_bomb_hits_the_limit() {
    // 2 MiB of zeros, compressed by the peers.
    let zeros = vec![0u8; 2 << 20];
    let made = py("out.append(zlib.compress(inp[0], 9))\nout.append(gzip.compress(inp[0]))", &[&zeros]);
    let zst = zstd_cli(&["-19"], &zeros).unwrap();
    let n = zeros.len();
    for (call, data) in [("zlib::decompress", &made[0]), ("gzip::decompress", &made[1]), ("zstd::decompress", &zst)] {
        let l = lit(data);
        assert_eq!(blob(&format!("{call}({l}, #{{max_size: {n}}})")).len(), n, "{call} exactly at the limit");
        let e = fails(&format!("{call}({l}, #{{max_size: {}}})", n - 1));
        assert!(e.starts_with(&format!("limit: {call}")), "{e}");
        let e = fails(&format!("{call}({l}, #{{max_size: 1000}})"));
        assert!(e.starts_with("limit:"), "{e}");
    }
    for (ctor, data) in
        [("zlib::decompressor(#{max_size: 1000})", &made[0]), ("zstd::decompressor(#{max_size: 1000})", &zst)]
    {
        let e = fails(&format!("let d = {ctor}; d.feed({})", lit(data)));
        assert!(e.starts_with("limit:") && e.contains("decompressor.feed"), "{e}");
    }
    assert!(fails(r#"zlib::decompress(blob(), #{max_size: -1})"#).starts_with("value:"));
    assert!(fails(r#"zlib::decompress(blob(), #{maxsize: 1})"#).starts_with("value:"));
}

#[test]
fn decompression_stops_at_the_blob_limit_whatever_max_size_says() {
    // 1 MiB of zeros, compressed by the peers; the host's blobs are limited to 64 KiB.
    let zeros = vec![0u8; 1 << 20];
    let made = py("out.append(zlib.compress(inp[0], 9))\nout.append(gzip.compress(inp[0]))", &[&zeros]);
    let zst = zstd_cli(&["-19"], &zeros).unwrap();
    for (call, data) in [("zlib::decompress", &made[0]), ("gzip::decompress", &made[1]), ("zstd::decompress", &zst)] {
        for opts in ["", ", #{max_size: 1 << 30}"] {
            let e = eval_limited(&format!("{call}({}{opts})", lit(data)), 64 << 10).expect_err("a limit error");
            assert!(e.starts_with(&format!("limit: {call}")) && e.contains("65536"), "{call}{opts}: {e}");
        }
        let d = call.replace("decompress", "decompressor");
        let e = eval_limited(&format!("let d = {d}(#{{max_size: 1 << 30}}); d.feed({})", lit(data)), 64 << 10)
            .expect_err("a limit error");
        assert!(e.starts_with("limit:") && e.contains("decompressor.feed"), "{d}: {e}");
    }
}

#[test]
fn default_limit_is_256_mib() {
    // 257 MiB of zeros, compressed by Python in pieces (about 260 KB).
    let bomb = py(
        "o = zlib.compressobj(9)\nz = b''.join(o.compress(bytes(1 << 20)) for _ in range(257))\nout.append(z + o.flush())",
        &[],
    );
    let e = fails(&format!("zlib::decompress({})", lit(&bomb[0])));
    assert!(e.starts_with("limit: zlib::decompress") && e.contains("268435456"), "{e}");
}

#[test]
fn corrupt_and_truncated_data_are_decode_errors() {
    let data = sample(3000, 60);
    let made = py("out.append(zlib.compress(inp[0]))\nout.append(gzip.compress(inp[0]))", &[&data]);
    let zst = zstd_cli(&["-3"], &data).unwrap();
    for (call, good, module) in [
        ("zlib::decompress", &made[0], "zlib"),
        ("gzip::decompress", &made[1], "gzip"),
        ("zstd::decompress", &zst, "zstd"),
    ] {
        let truncated = &good[..good.len() - 5];
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        flipped[mid + 1] ^= 0xaa;
        for bad in [truncated, &flipped[..], b"not compressed at all"] {
            if module != "zstd" {
                let python = py(
                    &format!("r=b'ok'\ntry: {module}.decompress(inp[0])\nexcept Exception: r=b'err'\nout.append(r)"),
                    &[bad],
                );
                assert_eq!(python[0], b"err");
            } else {
                assert!(zstd_cli(&["-d"], bad).is_err());
            }
            let e = fails(&format!("{call}({})", lit(bad)));
            assert!(e.starts_with(&format!("decode: {call}")), "{e}");
        }
    }
    let e = fails(&format!("let d = zlib::decompressor(); d.feed({})", lit(b"garbage!")));
    assert!(e.starts_with("decode: zlib::decompressor.feed"), "{e}");
}
