//! `json::`, `pickle::`, `base64::`, `hex::` and `hash::` against CPython's
//! `json`, `pickle`, `base64`, `bytes.hex`, `hashlib`, `hmac` and `zlib`.

use crate::compress::{blob, fails, lit, py, sample, temp_path};
use crate::util::eval;

/// Evaluate `code`, expecting a string.
fn text(code: &str) -> String {
    eval(code).unwrap_or_else(|e| panic!("script failed: {e}")).into_string().expect("a string")
}

/// A script string literal holding `s` (backtick strings take any text but a backtick).
fn slit(s: &str) -> String {
    assert!(!s.contains('`'));
    format!("`{s}`")
}

/// Python values covering every JSON type and awkward numbers and strings.
const PY_JSON_VALUES: &str = r#"[0, -1, 2**63 - 1, -2**63, 2**63, 2**64 - 1, 0.1, -0.0, 1e300, 5e-324, 1.0, 123456.789e-10,
  "", "plain", "quote \" backslash \\ slash / tab \t nl \n", "\u00e9\u4e2d\U0001f600", "\u0000\u001f",
  None, True, False, [], {}, [[[]]], {"a": {"b": [1, {"c": None}]}}, {"k\u00e9y": 1, "": 2}]"#;

#[test]
fn json_decodes_python_and_python_decodes_ours() {
    let encoded = py(&format!("out.append(json.dumps({PY_JSON_VALUES}).encode())"), &[]);
    let python_text = String::from_utf8(encoded[0].clone()).unwrap();
    for opts in ["#{}", "#{pretty: true}", "#{sort_keys: true}"] {
        let ours = text(&format!("json::encode(json::decode({}), {opts})", slit(&python_text)));
        let same =
            py(&format!("out.append(b'1' if json.loads(inp[0]) == {PY_JSON_VALUES} else b'0')"), &[ours.as_bytes()]);
        assert_eq!(same[0], b"1", "{opts}: {ours}");
    }
    // Blob input (UTF-8 bytes) decodes the same.
    let from_blob = text(&format!("json::encode(json::decode({}))", lit(python_text.as_bytes())));
    let same =
        py(&format!("out.append(b'1' if json.loads(inp[0]) == {PY_JSON_VALUES} else b'0')"), &[from_blob.as_bytes()]);
    assert_eq!(same[0], b"1");
}

#[test]
fn json_types_and_round_trips() {
    let types = text(
        r#"let v = json::decode("[1, 1.0, 18446744073709551615, null, true, \"s\"]"); v.map(|x| type_of(x)).reduce(|a, t| a + " " + t, "")"#,
    );
    assert_eq!(types.trim(), "i64 f64 decimal () bool string");
    // Floats survive encode/decode exactly, as Python's repr does.
    let floats = py(
        "import random\nrandom.seed(7)\nout.append(json.dumps([random.random() * 10 ** random.randint(-300, 300) for _ in range(300)]).encode())",
        &[],
    );
    let f = String::from_utf8(floats[0].clone()).unwrap();
    let ours = text(&format!("json::encode(json::decode({}))", slit(&f)));
    let same =
        py("out.append(b'1' if json.loads(inp[0]) == json.loads(inp[1]) else b'0')", &[ours.as_bytes(), f.as_bytes()]);
    assert_eq!(same[0], b"1");
    // Script values encode to what Python reads back as the same values.
    let ours = text(r#"json::encode(#{n: 42, f: 2.5, s: "x\ny", u: (), a: [true, false, 'c'], m: #{}})"#);
    let same = py(
        r#"out.append(b'1' if json.loads(inp[0]) == {"n": 42, "f": 2.5, "s": "x\ny", "u": None, "a": [True, False, "c"], "m": {}} else b'0')"#,
        &[ours.as_bytes()],
    );
    assert_eq!(same[0], b"1");
}

#[test]
fn json_pretty_matches_python_indent_2() {
    let value = r#"{"b": [1, 2, {"c": null}], "a": "x", "d": {}, "e": [], "f": true}"#;
    let python = py(
        &format!(
            "out.append(json.dumps({}, indent=2, sort_keys=True).encode())",
            value.replace("null", "None").replace("true", "True")
        ),
        &[],
    );
    let ours = text(&format!("json::encode(json::decode({}), #{{pretty: true}})", slit(value)));
    assert_eq!(ours.as_bytes(), python[0].as_slice());
}

#[test]
fn json_errors() {
    for bad in ["{\"a\": 1,\n  \"b\": }", "[1, 2", "\n\n  nul", "{'a': 1}", "[1] x"] {
        let python = py(
            "try:\n  json.loads(inp[0]); out.append(b'ok')\nexcept json.JSONDecodeError as e: out.append(str(e.lineno).encode())",
            &[bad.as_bytes()],
        );
        let line = String::from_utf8(python[0].clone()).unwrap();
        let e = fails(&format!("json::decode({})", lit(bad.as_bytes())));
        assert!(e.starts_with("decode: json::decode"), "{e}");
        assert!(e.contains(&format!("line {line} ")), "python says line {line}: {e}");
    }
    // Documented difference: Python's default accepts NaN, strict JSON does not.
    assert_eq!(py("out.append(str(json.loads('NaN')).encode())", &[])[0], b"nan");
    assert!(fails(r#"json::decode("NaN")"#).starts_with("decode: json::decode"));
    assert!(fails(r#"json::encode([1, blob(2)])"#).contains("use base64::encode first"));
    assert!(fails(r#"json::encode(0.0 / 0.0)"#).starts_with("value: json::encode"));
    assert!(fails(r#"json::encode(1, #{indent: 2})"#).starts_with("value:"));
    assert!(fails(r#"let a = []; for i in 0..200 { a = [a]; } json::encode(a)"#).contains("nested deeper"));
}

/// Python that maps a value to what netscript gives back after
/// `loads` then `dumps`: tuples and sets become lists, int and bytes keys
/// strings, bytearrays bytes.
const PY_NORM: &str = r#"
def norm(v):
    if isinstance(v, (list, tuple)): return [norm(x) for x in v]
    if isinstance(v, (set, frozenset)): return sorted(norm(x) for x in v)
    if isinstance(v, bytearray): return bytes(v)
    if isinstance(v, dict): return {(k.decode() if isinstance(k, bytes) else str(k)): norm(x) for k, x in v.items()}
    return v
"#;

const PY_PICKLE_VALUES: &str = r#"[0, -1, 255, 65536, 2**31, -2**63, 2**63 - 1, 2**70, -2**80, 0.5, -1e-300, float('inf'),
  "", "text \u00e9\U0001f600", b"\x00\xff" * 300, bytearray(b"ba"), None, True, False,
  b"", bytearray(), [b"", b""], [bytearray(), bytearray()],
  [], (), (1,), (1, "two", 3.0), {1, 2, 3}, frozenset({"x"}), {}, {"a": [1, {"b": None}]},
  {1: "int key", b"bk": "bytes key"}, [[[[]]]], "x" * 70000]"#;

#[test]
fn pickle_reads_every_python_protocol_and_python_reads_ours() {
    for protocol in 0..=5 {
        let p = py(&format!("out.append(pickle.dumps({PY_PICKLE_VALUES}, protocol={protocol}))"), &[]);
        for write in [2, 3] {
            let ours = blob(&format!("pickle::dumps(pickle::loads({}), {write})", lit(&p[0])));
            let same = py(
                &format!("{PY_NORM}\nout.append(b'1' if pickle.loads(inp[0]) == norm({PY_PICKLE_VALUES}) else b'0')"),
                &[&ours],
            );
            assert_eq!(same[0], b"1", "read protocol {protocol}, wrote {write}");
        }
    }
    let default = blob(r#"pickle::dumps(#{n: 1, b: "xy".to_blob(), l: [(), 2.5, 'c']})"#);
    let same = py(
        "out.append(bytes([inp[0][1]]) + (b'1' if pickle.loads(inp[0]) == {'n': 1, 'b': b'xy', 'l': [None, 2.5, 'c']} else b'0'))",
        &[&default],
    );
    assert_eq!(same[0], b"\x031", "protocol 3 by default");
}

#[test]
fn pickle_script_types() {
    let p = py("out.append(pickle.dumps([2**70, (1, 2), b'b', 'caf\\u00e9', {5: 1}]))", &[]);
    let types = text(&format!(
        "let v = pickle::loads({}); type_of(v[0]) + \" \" + type_of(v[1]) + \" \" + type_of(v[2]) + \" \" + v[3] + \" \" + v[4][\"5\"]",
        lit(&p[0])
    ));
    assert_eq!(types, "decimal array blob café 1");
}

#[test]
fn pickle_refuses_code_and_unsupported_values() {
    let marker = temp_path("pickle-marker");
    // A pickle that would run os.system if it were executed.
    let evil = format!("cos\nsystem\n(S'touch {}'\ntR.", marker.display());
    let e = fails(&format!("pickle::loads({})", lit(evil.as_bytes())));
    assert!(e.starts_with("decode: pickle::loads"), "{e}");
    assert!(!marker.exists(), "the pickle ran code");
    let made = py(
        "import fractions, collections\nout.append(pickle.dumps(fractions.Fraction(1, 2)))\nout.append(pickle.dumps(collections.OrderedDict(a=1)))\nout.append(pickle.dumps(2**100))\nout.append(pickle.dumps({1.5: 'x'}))\nout.append(pickle.dumps({1: 'a', '1': 'b'}))\nl = []\nl.append(l)\nout.append(pickle.dumps(l))\nout.append(pickle.dumps([1, 2])[:-3])",
        &[],
    );
    for (bad, what) in
        made.iter().zip(["class instance", "OrderedDict", "2**100", "float key", "key clash", "recursive", "truncated"])
    {
        let e = fails(&format!("pickle::loads({})", lit(bad)));
        assert!(e.starts_with("decode: pickle::loads"), "{what}: {e}");
    }
    assert!(fails(r#"pickle::dumps(1, 4)"#).starts_with("value: pickle::dumps"));
    assert!(fails(r#"pickle::dumps(|x| x)"#).starts_with("value: pickle::dumps"));
}

#[test]
fn base64_matches_python() {
    for (i, len) in [0usize, 1, 2, 3, 4, 5, 57, 58, 1000].into_iter().enumerate() {
        let data = sample(len, 70 + i as u64);
        let python = py(
            "out.append(base64.b64encode(inp[0]))\nout.append(base64.urlsafe_b64encode(inp[0]))\nout.append(base64.encodebytes(inp[0]))",
            &[&data],
        );
        let std = String::from_utf8(python[0].clone()).unwrap();
        let url = String::from_utf8(python[1].clone()).unwrap();
        let mime = String::from_utf8(python[2].clone()).unwrap();
        assert_eq!(text(&format!("base64::encode({})", lit(&data))), std);
        assert_eq!(text(&format!("base64::urlsafe_encode({})", lit(&data))), url);
        assert_eq!(blob(&format!("base64::decode({})", slit(&std))), data);
        assert_eq!(blob(&format!("base64::urlsafe_decode({})", slit(&url))), data);
        assert_eq!(blob(&format!("base64::decode({})", slit(&mime))), data, "line-wrapped");
        assert_eq!(blob(&format!("base64::urlsafe_decode({})", slit(url.trim_end_matches('=')))), data, "unpadded");
    }
    assert_eq!(
        text(r#"base64::encode("hi?>")"#),
        String::from_utf8(py("out.append(base64.b64encode(b'hi?>'))", &[])[0].clone()).unwrap()
    );
    for bad in ["abc$", "a", "ab=c", "YQ==YQ=="] {
        let python = py(
            "try:\n  base64.b64decode(inp[0], validate=True); out.append(b'ok')\nexcept Exception: out.append(b'err')",
            &[bad.as_bytes()],
        );
        assert_eq!(python[0], b"err", "{bad}");
        assert!(fails(&format!("base64::decode({})", slit(bad))).starts_with("decode: base64::decode"), "{bad}");
    }
}

#[test]
fn hex_matches_python() {
    let data = sample(300, 80);
    let python = py("out.append(inp[0].hex().encode())", &[&data]);
    let hex = String::from_utf8(python[0].clone()).unwrap();
    assert_eq!(text(&format!("hex::encode({})", lit(&data))), hex);
    for s in ["DEADbeef", " de ad\tbe\nef ", "de\x0bad", ""] {
        let expect = py("out.append(bytes.fromhex(inp[0].decode()))", &[s.as_bytes()]);
        assert_eq!(blob(&format!("hex::decode({})", slit(s))), expect[0], "{s:?}");
    }
    for bad in ["a b", "abc", "ag", "ab\u{0}", "12 3x"] {
        let python = py(
            "try:\n  bytes.fromhex(inp[0].decode()); out.append(b'ok')\nexcept ValueError as e: out.append(str(e).rsplit(' ', 1)[1].encode())",
            &[bad.as_bytes()],
        );
        let pos = String::from_utf8(python[0].clone()).unwrap();
        let e = fails(&format!("hex::decode({})", slit(bad)));
        assert!(
            e.starts_with("decode: hex::decode") && e.contains(&format!("position {pos} ")),
            "python says {pos}: {e}"
        );
    }
}

#[test]
fn hashes_match_hashlib_hmac_and_zlib() {
    let algos = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];
    for (i, len) in [0usize, 1, 55, 56, 64, 1000, 100_000].into_iter().enumerate() {
        let data = sample(len, 90 + i as u64);
        let key = sample(i * 37, 99);
        let body = algos
            .iter()
            .map(|a| {
                format!("out.append(hashlib.{a}(inp[0]).digest())\nout.append(hmac.digest(inp[1], inp[0], '{a}'))")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let python = py(&body, &[&data, &key]);
        let (d, k) = (lit(&data), lit(&key));
        for (n, a) in algos.iter().enumerate() {
            assert_eq!(blob(&format!("hash::{a}({d})")), python[2 * n], "{a} of {len}");
            assert_eq!(blob(&format!("hash::digest(\"{}\", {d})", a.to_uppercase())), python[2 * n]);
            assert_eq!(
                blob(&format!("hash::hmac(\"{a}\", {k}, {d})")),
                python[2 * n + 1],
                "hmac {a}, key {}",
                key.len()
            );
        }
        let sums = py(
            "for s in (None, 0, 1, 12345, 2**32 - 1, -1, 2**40 + 7):\n  for f in (zlib.crc32, zlib.adler32):\n    out.append(str(f(inp[0]) if s is None else f(inp[0], s)).encode())",
            &[&data],
        );
        let mut k = 0;
        for start in ["", ", 0", ", 1", ", 12345", ", 4294967295", ", -1", ", 1099511627783"] {
            for f in ["crc32", "adler32"] {
                let ours = eval(&format!("hash::{f}({d}{start})")).unwrap().as_int().unwrap();
                assert_eq!(ours.to_string().as_bytes(), sums[k].as_slice(), "{f}({len}{start})");
                k += 1;
            }
        }
    }
    let python = py("out.append(hashlib.sha256(b'text').digest())", &[]);
    assert_eq!(blob(r#"hash::sha256("text")"#), python[0], "strings hash as UTF-8");
    assert!(fails(r#"hash::hmac("sha3", "k", "m")"#).starts_with("value: hash::hmac"));
    assert!(fails(r#"hash::digest("nope", "m")"#).starts_with("value: hash::digest"));
    assert!(eval(r#"hash::compare_digest(hash::md5("a"), hash::md5("a"))"#).unwrap().as_bool().unwrap());
    assert!(!eval(r#"hash::compare_digest(hash::md5("a"), hash::md5("b"))"#).unwrap().as_bool().unwrap());
    assert!(!eval(r#"hash::compare_digest("ab", "abc")"#).unwrap().as_bool().unwrap());
}

/// Pickles nesting containers `depth` levels deep, one per nesting opcode
/// (and through memo references), as `(name, bytes)`.
fn deep_pickles(depth: usize) -> Vec<(&'static str, Vec<u8>)> {
    let repeat = |head: &[u8], each: &[u8], tail: &[u8]| {
        let mut p = b"\x80\x02".to_vec();
        p.extend_from_slice(head);
        for _ in 0..depth {
            p.extend_from_slice(each);
        }
        p.extend_from_slice(tail);
        p.push(b'.');
        p
    };
    let nest = |open: &[u8], close: &[u8]| {
        let mut p = b"\x80\x02".to_vec();
        for _ in 0..depth {
            p.extend_from_slice(open);
        }
        p.push(b'N');
        for _ in 0..depth {
            p.extend_from_slice(close);
        }
        p.push(b'.');
        p
    };
    // Each list holds the previous one through the memo (LONG_BINPUT i, LONG_BINGET i - 1).
    let mut memo = b"\x80\x02]r\x00\x00\x00\x000".to_vec();
    for i in 1..=depth as u32 {
        memo.extend_from_slice(b"]j");
        memo.extend_from_slice(&(i - 1).to_le_bytes());
        memo.extend_from_slice(b"ar");
        memo.extend_from_slice(&i.to_le_bytes());
        memo.push(b'0');
    }
    memo.push(b'j');
    memo.extend_from_slice(&(depth as u32).to_le_bytes());
    memo.push(b'.');
    vec![
        ("TUPLE1", repeat(b")", b"\x85", b"")),
        ("TUPLE2", repeat(b")", b"N\x86", b"")),
        ("TUPLE3", repeat(b")", b"NN\x87", b"")),
        ("MARK TUPLE", nest(b"(", b"t")),
        ("MARK LIST", nest(b"(", b"l")),
        ("EMPTY_LIST APPEND", nest(b"]", b"a")),
        ("EMPTY_LIST APPENDS", nest(b"](", b"e")),
        ("EMPTY_DICT SETITEM", nest(b"}K\x01", b"s")),
        ("EMPTY_DICT SETITEMS", nest(b"}(K\x01", b"u")),
        ("MARK DICT", nest(b"(K\x01", b"d")),
        ("frozenset of tuples", nest(b"(", b"\x85\x91")),
        ("lists through the memo", memo),
    ]
}

#[test]
fn pickle_deep_nesting_is_a_decode_error_naming_the_depth() {
    // CPython reads every one of these (its unpickler does not recurse);
    // we refuse them before anything recurses on the nesting.
    let pickles = deep_pickles(3000);
    let inputs: Vec<&[u8]> = pickles.iter().map(|(_, p)| p.as_slice()).collect();
    let python = py("for p in inp:\n  pickle.loads(p)\n  out.append(b'ok')", &inputs);
    assert_eq!(python.len(), pickles.len());
    for (name, p) in &pickles {
        let e = fails(&format!("pickle::loads({})", lit(p)));
        assert!(e.starts_with("decode: pickle::loads") && e.contains("nested deeper than 128 levels"), "{name}: {e}");
    }
    // Within the bound they still load.
    for (name, p) in deep_pickles(60) {
        let v = eval(&format!("pickle::loads({})", lit(&p))).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.is_array() || v.is_map(), "{name}: {v:?}");
    }
}

#[test]
fn a_server_survives_a_deeply_nested_pickle_frame() {
    use crate::util::Peer;
    let script = r#"
        let srv = tcp::listen("127.0.0.1", 0).serve(|c| {
            let reply = "";
            try { reply = `ok ${pickle::loads(c.recv_frame()).len()}`; } catch (e) { reply = `${e.kind}: ${e.message}`; }
            c.send_line(reply);
        });
        print(srv.port);
        task::sleep(20);
    "#;
    let server = Peer::netscript(&["run", "-e", script]);
    // One 6 KB frame of 1-tuples, then a well-behaved client.
    let out = crate::util::python(&format!(
        "import socket, struct, pickle\n\
         def ask(payload):\n    c = socket.create_connection(('127.0.0.1', {port}), timeout=10)\n    c.sendall(struct.pack('!I', len(payload)) + payload)\n    return c.makefile().readline().strip()\n\
         deep = b'\\x80\\x02)' + b'\\x85' * 6000 + b'.'\n\
         print(ask(deep))\n\
         print(ask(pickle.dumps([1, 2, 3])))\n\
         print(ask(deep))\n\
         print(ask(pickle.dumps({{'a': 1}})))",
        port = server.port
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("decode: ") && lines[0].contains("nested deeper than 128 levels"), "{out}");
    assert_eq!(lines[1], "ok 3");
    assert_eq!(lines[2], lines[0]);
    assert_eq!(lines[3], "ok 1");
}

#[test]
fn pickle_objects_are_decode_errors() {
    // Instances pickled by CPython with every protocol: REDUCE of
    // copyreg._reconstructor (0-1), NEWOBJ + BUILD (2-5), NEWOBJ_EX.
    let made = py(
        "import copyreg\n\
         class C:\n  pass\n\
         class D:\n  def __init__(self): self.a = 1\n\
         class E:\n  def __reduce__(self): return (copyreg._reconstructor, (E, object, None))\n\
         class F:\n  def __new__(cls, *, k): return object.__new__(cls)\n  def __getnewargs_ex__(self): return ((), {'k': 1})\n\
         for o in [C(), D(), E()]:\n  for proto in range(6):\n    out.append(pickle.dumps(o, protocol=proto))\n\
         out.append(pickle.dumps(F(k=1), protocol=4))",
        &[],
    );
    assert_eq!(made.len(), 19);
    // CPython 3 no longer writes INST and OBJ; these are what Python 2 wrote.
    let old: [&[u8]; 2] = [b"(i__main__\nC\n(dS'a'\nI1\nsb.", b"(c__main__\nC\no."];
    for (i, p) in made.iter().map(Vec::as_slice).chain(old).enumerate() {
        let e = fails(&format!("pickle::loads({})", lit(p)));
        assert!(e.starts_with("decode: pickle::loads") && e.contains("objects are not unpickled"), "pickle {i}: {e}");
    }
}

#[test]
fn deep_script_values_encode_as_limit_errors() {
    for (encode, build) in [
        ("json::encode", "a = [take(a)]"),
        ("json::encode", "a = #{k: take(a)}"),
        ("pickle::dumps", "a = [take(a)]"),
        ("pickle::dumps", "a = #{k: take(a)}"),
    ] {
        let code = format!("let a = []; for i in 0..20000 {{ {build}; }} {encode}(a)");
        let e = fails(&code);
        assert!(e.starts_with(&format!("limit: {encode}")) && e.contains("nested deeper than 128"), "{code}: {e}");
    }
}

#[test]
fn json_integers_beyond_int_stay_exact() {
    let numbers = [
        "12345678901234567890123456789",
        "-12345678901234567890123456789",
        "9223372036854775808",
        "18446744073709551616",
        "79228162514264337593543950335",
    ];
    let doc = format!("[{}]", numbers.join(", "));
    let ours = text(&format!(
        "let v = json::decode({}); json::encode(v) + \" \" + v.map(|x| type_of(x)).reduce(|a, t| a + \",\" + t, \"\")",
        slit(&doc)
    ));
    let (encoded, types) = ours.split_once(' ').expect("two parts");
    assert_eq!(types, ",decimal,decimal,decimal,decimal,decimal");
    let same =
        py(&format!("out.append(b'1' if json.loads(inp[0]) == json.loads({doc:?}) else b'0')"), &[encoded.as_bytes()]);
    assert_eq!(same[0], b"1", "{encoded}");
    // Beyond a decimal: an error, not a rounded float.
    for big in ["79228162514264337593543950336", "123456789012345678901234567890"] {
        let e = fails(&format!("json::decode(\"[1, {big}]\")"));
        assert!(e.starts_with("decode: json::decode") && e.contains(big), "{e}");
    }
    assert!(text(r#"type_of(json::decode("1e30")) + " " + type_of(json::decode("1.5"))"#) == "f64 f64");
}

#[test]
fn deeply_nested_script_values_build_print_compare_and_drop() {
    // 20,000 levels of arrays and of maps, in the main script and in a task
    // (whose stack is smaller), with and without data-size limits: copying,
    // printing, comparing and freeing them must not recurse per level.
    let body = r#"let a = []; let m = #{};
        for i in 0..20000 { a = [take(a)]; m = #{k: take(m), n: [i]}; }
        let b = a; let n = m;
        print(a == b); print(m == n); b[0] = 1; print(a == b); print(a != b);
        print(to_string(a).len()); print(`${a}`.len()); print(to_debug(m).len() > 20000 * 14);
        print(to_debug(m).starts_with(`#{"k": #{"k": #{`));
        a = (); m = (); b = (); n = (); print("dropped");"#;
    let script = format!("{body} let t = task::start(|| {{ {body} 7 }}); print(t.join());");
    // The REPL shows such a value (indented for 32 levels, then on one line).
    let (code, out, err) = crate::util::cli_stdin(&["repl"], "let a = [];\nfor i in 0..20000 { a = [take(a)]; }\na\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{}{}", "[".repeat(20000 - 40), "]".repeat(20000 - 40))), "{err}");
    let expected = "true\ntrue\nfalse\ntrue\n40002\n40002\ntrue\ntrue\ndropped\n".repeat(2) + "7\n";
    for limits in [&[][..], &["--max-array-size", "100000000", "--max-string-size", "100000000"]] {
        let mut args = vec!["run"];
        args.extend_from_slice(limits);
        args.extend_from_slice(&["-e", &script]);
        let (code, out, err) = crate::util::cli(&args);
        assert_eq!((code, out.as_str()), (0, expected.as_str()), "{limits:?}: {err}");
    }
}

#[test]
fn array_size_limit_counts_exactly_when_push_measures_only_the_item() {
    // With a limit, `push` measures only the pushed item when it follows a
    // check of the same array. Each case changes the array in between (an
    // item replaced by an array, a nested array grown, the whole array
    // replaced, items removed) and must stop where a full measure does:
    // total items, nested arrays included, at most 10.
    let push = |name: &str| format!("for i in 0..5 {{ {name}.push(i); print({name}.len()); }}");
    for (setup, array, printed) in [
        ("let a = []; for i in 0..5 { a.push(i); } a[0] = [1, 2, 3];", "a", "6\n7\n"),
        ("let b = []; for i in 0..3 { b.push(i); } b.push([]); b[3].push(1); b[3].push(2);", "b", "5\n6\n7\n8\n"),
        ("let c = []; for i in 0..3 { c.push(i); } let d = [[1, 2, 3, 4, 5], 0, 0]; c = d;", "c", "4\n5\n"),
        ("let e = []; for i in 0..10 { e.push(i); } e.pop(); e.pop(); e.pop();", "e", "8\n9\n10\n"),
    ] {
        let script = format!("{setup} {}", push(array));
        let (code, out, err) = crate::util::cli(&["run", "--max-array-size", "10", "-e", &script]);
        assert_eq!((code, out.as_str()), (1, printed), "{script}: {err}");
        assert!(err.contains("Size of array"), "{err}");
    }
    // A million pushes under a limit finish (each measured in O(1)).
    let (code, out, err) = crate::util::cli(&[
        "run",
        "--max-array-size",
        "10000000",
        "-e",
        "let f = []; for i in 0..1000000 { f.push(i); } print(f.len());",
    ]);
    assert_eq!((code, out.as_str()), (0, "1000000\n"), "{err}");
}
