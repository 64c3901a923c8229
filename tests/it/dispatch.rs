//! Function dispatch through the vendored Rhai's call caches and its
//! pre-resolved loop bodies (`vendor/README.md`): a call that has resolved
//! once is sent straight to its function afterwards, and a loop body runs
//! from its second iteration on in a pre-resolved form. These tests pin down
//! that the fast paths always do what the evaluator does.

use crate::util::{cli, eval};

#[test]
fn script_methods_and_native_functions_keep_apart_at_one_native_signature() {
    // `len(b)` and `b.len()` reach the same native function, but only the
    // method call can be taken by the script's `fn len()`. Each order runs
    // several times so that the second and later calls use the cache.
    let v = eval(
        r#"fn len() { 42 }
           let b = blob(3);
           let out = [];
           for i in 0..3 { out.push(len(b)); out.push(b.len()); }
           for i in 0..3 { out.push(b.len()); out.push(len(b)); }
           out"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), "[3, 42, 3, 42, 3, 42, 42, 3, 42, 3, 42, 3]");
}

#[test]
fn cached_method_calls_leave_map_methods_and_shared_variables_alone() {
    // A map's function-pointer property takes a method call of its name,
    // even after the same name was cached for another receiver type; a
    // method that mutates a captured (shared) variable still updates it.
    let v = eval(
        r#"let m = #{ len: || 100 };
           let b = blob(2);
           let out = [];
           for i in 0..2 { out.push(b.len()); out.push(m.len()); }
           let a = [1];
           let f = || { for i in 0..3 { a.push(i); } a.len() };
           out.push(f.call());
           out.push(a);
           out"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), "[2, 100, 2, 100, 4, [1, 0, 1, 2]]");
}

#[test]
fn one_call_site_follows_its_argument_types() {
    let v = eval(
        r#"let out = [];
           for round in 0..2 {
               for v in [blob(2), "abc", [1, 2, 3, 4], #{a: 1}] { out.push(v.len()); }
               for v in [blob(2), "abc"] { out.push(struct::unpack_from("<H", v + "zz")); }
           }
           out"#,
    )
    .unwrap();
    assert_eq!(
        v.to_string(),
        "[2, 3, 4, 1, [0], [25185], 2, 3, 4, 1, [0], [25185]]",
        "blob(2) + \"zz\" starts with two zero bytes; \"abczz\" with \"ab\""
    );
}

#[test]
fn functions_of_one_name_in_two_modules_stay_apart() {
    // `zlib::compress` and `zstd::compress` share name and argument types;
    // Rhai's qualified hash leaves out the root module, so the call cache
    // must not. Each output starts with its own format's magic bytes.
    let v = eval(
        r#"let b = blob(1000, 65);
           let out = [];
           for i in 0..3 {
               out.push(bytes::to_hex(zlib::compress(b, 6).extract(0, 1)));
               out.push(bytes::to_hex(zstd::compress(b, 3).extract(0, 4)));
           }
           out"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"["78", "28b52ffd", "78", "28b52ffd", "78", "28b52ffd"]"#);
}

#[test]
fn an_imported_module_shadows_a_static_one_after_cached_calls() {
    let dir = std::env::temp_dir().join(format!("netscript-dispatch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shadow.rhai"), "fn calcsize(f) { `shadow ${f}` }\n").unwrap();
    let main = dir.join("main.rhai");
    std::fs::write(
        &main,
        r#"let out = [];
           for i in 0..2 { out.push(struct::calcsize("!I")); }
           {
               import "shadow" as struct;
               for i in 0..2 { out.push(struct::calcsize("!I")); }
           }
           for i in 0..2 { out.push(struct::calcsize("!I")); }
           print(out);
        "#,
    )
    .unwrap();
    let (status, out, err) = cli(&["run", main.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.trim(), r#"[4, 4, "shadow !I", "shadow !I", 4, 4]"#);
}

#[test]
fn errors_from_cached_calls_keep_their_position() {
    // The third pack overflows `B`; by then both calls are cached.
    let (status, _, err) = cli(&[
        "run",
        "-e",
        "let n = 0;\nfor i in 0..3 {\n    let b = blob(1);\n    b.push(1);\n    let p = struct::pack(\"!B\", [i * 200]);\n}",
    ]);
    assert_eq!(status, 1);
    assert!(err.contains(":5:"), "{err}");
    assert!(err.contains("pack: "), "{err}");
    assert!(err.contains("argument out of range") || err.contains("format requires"), "{err}");
}

/// Runs each snippet as a loop body four times and returns, per snippet,
/// the values it left in `r`: the first iteration goes through the
/// evaluator, the others through the pre-resolved body, so the four must
/// agree (where the snippet does not depend on `k`).
fn each_iteration(snippets: &[&str]) -> Vec<String> {
    snippets
        .iter()
        .map(|body| {
            let code = format!("let out = []; for k in 0..4 {{ let r = (); {body} out.push(r); }} out");
            eval(&code).unwrap_or_else(|e| panic!("{body}: {e}")).to_string()
        })
        .collect()
}

#[test]
fn loop_bodies_do_on_every_iteration_what_the_first_did() {
    let cases = [
        ("let x = 1; let x = x + 1; r = x;", "[2, 2, 2, 2]"),
        ("let a = [1]; push(a, 2); a.push(3); r = a;", "[[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]"),
        ("const c = 5; r = c * 2 + k;", "[10, 11, 12, 13]"),
        (
            r#"if k % 2 == 0 { let y = "even"; r = y; } else { let y = "odd"; r = y + k; }"#,
            r#"["even", "odd1", "even", "odd3"]"#,
        ),
        ("let s = `${k}`; r = s + s.len();", r#"["01", "11", "21", "31"]"#),
        ("let b = struct::pack(\"<H\", k); r = struct::unpack(\"<H\", b)[0] + b.len();", "[2, 3, 4, 5]"),
        ("let v = [k, k * 2]; r = v.len() + v[1];", "[2, 4, 6, 8]"),
        ("r = if k > 1 { \"big\" } else { k };", r#"[0, 1, "big", "big"]"#),
        ("let n = 0; while n < k { n += 1; } r = n;", "[0, 1, 2, 3]"),
        ("let n = 0; do { n += 2; } while n < k; r = n;", "[2, 2, 2, 4]"),
        ("let m = loop { if true { break k * 10; } }; r = m;", "[0, 10, 20, 30]"),
        ("let t = 0; for j in 0..10 { if j == k { continue; } if j > 3 { break; } t += j; } r = t;", "[6, 5, 4, 3]"),
        (
            "let t = []; for v in [1, \"a\", 2.5, blob(2)] { t.push(type_of(v)); t.push(to_string(v).len()); } r = t.len();",
            "[8, 8, 8, 8]",
        ),
        ("let f = |x| x + k; r = f.call(1);", "[1, 2, 3, 4]"),
        (
            "let x = 3; r = x; x = \"now a string\"; r = `${r} ${x}`;",
            r#"["3 now a string", "3 now a string", "3 now a string", "3 now a string"]"#,
        ),
    ];
    let got = each_iteration(&cases.map(|(body, _)| body));
    for ((body, want), got) in cases.iter().zip(got) {
        assert_eq!(&got, want, "{body}");
    }
}

#[test]
fn loop_bodies_see_and_change_the_variables_around_them() {
    let v = eval(
        r#"let total = 0;
           let seen = [];
           let name = "outer";
           for i in 0..4 {
               total += i;
               seen.push(name);
               push(seen, i);
               let name = "inner";
               seen.push(name);
           }
           [total, seen.len(), seen[0], seen[2], name]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"[6, 12, "outer", "inner", "outer"]"#);
}

#[test]
fn returns_and_throws_leave_pre_resolved_loops() {
    let v = eval(
        r#"fn find(a, t) { for x in a { let y = x * 2; if y == t { return `found ${x}`; } } "none" }
           let out = [];
           for i in 0..3 { out.push(find([1, 2, 3, 4], i * 4)); }
           let caught = "no";
           try { for i in 0..5 { if i == 3 { throw `stop ${i}`; } } } catch (e) { caught = e; }
           out.push(caught);
           out"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"["none", "found 2", "found 4", "stop 3"]"#);
}

#[test]
fn closures_made_in_a_loop_body_capture_each_iteration() {
    let v = eval(
        r#"let fs = [];
           for i in 0..3 { let j = i * 2; fs.push(|| j); }
           let acc = [];
           let add = |x| acc.push(x);
           for i in 0..3 { add.call(i); acc.push(i * 10); }
           [fs.map(|f| f.call()), acc]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), "[[0, 2, 4], [0, 0, 1, 10, 2, 20]]");
}

#[test]
fn errors_in_pre_resolved_loops_keep_their_kind_and_position() {
    // Each error comes on the third iteration, after the body was pre-resolved.
    let cases = [
        (
            "let s = 0;\nfor i in 0..3 {\n    s += 1;\n    if i == 2 {\n        let q = s.no_such_method();\n    }\n}",
            ":5:",
        ),
        ("const c = 1;\nfor i in 0..3 {\n    let x = i;\n    if i == 2 {\n        c = x;\n    }\n}", ":5:"),
        ("for i in 0..3 {\n    let b = i;\n    let t = if i < 2 { b } else { \"x\" };\n    let u = t - 1;\n}", ":4:"),
        ("let a = [1, 2];\nlet i = 0;\nwhile i < 3 {\n    let x = a[i];\n    i += 1;\n}", ":4:"),
    ];
    for (code, line) in cases {
        let (status, _, err) = cli(&["run", "-e", code]);
        assert_eq!(status, 1, "{code}");
        assert!(err.contains(line), "{code}\n{err}");
    }
}

#[test]
fn size_limits_hold_in_pre_resolved_loops() {
    // The nested array passes the limit of 3 only on the third iteration.
    let code = "let v = [1, 2];\nfor i in 0..3 {\n    let a = [i];\n    if i == 2 { a = [v, v]; }\n}";
    let (status, _, err) = cli(&["run", "--max-array-size", "3", "-e", code]);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains(":4:25: limit:"), "{err}");
}

#[test]
fn operation_limits_hold_in_pre_resolved_loops() {
    let (status, _, err) =
        cli(&["run", "--max-operations", "5000", "-e", "let n = 0; for i in 0..100000 { let x = i; n += x; }"]);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("limit"), "{err}");
    let (status, out, err) = cli(&[
        "run",
        "--max-operations",
        "100000",
        "-e",
        "let n = 0; for i in 0..1000 { let x = i; n += x; } print(n);",
    ]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.trim(), "499500");
}

#[test]
fn arguments_passed_in_place_to_a_native_stay_intact() {
    // `struct::unpack*` read their arguments in place, so a loop body passes
    // them its literals and variables rather than copies: each must be there
    // afterwards, also when the call site meets another argument type (and
    // copies instead), and when an argument expression leaves the iteration
    // with `continue`.
    let v = eval(
        r#"let buf = blob(8, 1);
           let out = [];
           for i in 0..4 { out.push(struct::unpack_from("<H", buf, i * 2)[0]); out.push(buf.unpack_from("<B", i)[0]); }
           out.push(buf.len());
           for round in 0..2 {
               for v in [blob(2, 1), "ab", blob(2, 2), "ab", blob(2, 1)] { out.push(struct::unpack("<H", v)[0]); out.push(v.len()); }
           }
           for i in 0..5 { out.push(struct::unpack_from("<H", buf, if i == 3 { continue; } else { 0 })[0]); }
           out"#,
    )
    .unwrap();
    assert_eq!(
        v.to_string(),
        "[257, 1, 257, 1, 257, 1, 257, 1, 8, \
         257, 2, 25185, 2, 514, 2, 25185, 2, 257, 2, 257, 2, 25185, 2, 514, 2, 25185, 2, 257, 2, \
         257, 257, 257, 257]"
    );
}

#[test]
fn arguments_that_read_or_change_another_argument_see_the_evaluator_order() {
    // A variable is passed in place only when no other argument of the call
    // mentions it; otherwise it is copied where the evaluator copies it: before
    // a later argument reads it, changes it or assigns it. A shared variable
    // is read through its lock.
    let v = eval(
        r#"let buf = struct::pack("<II", [1, 2]);
           let out = [];
           for i in 0..3 { out.push(struct::unpack_from("<I", buf, buf.len() - 4)[0]); }
           let arr = [1, 2, 3];
           for i in 0..3 { out.push(struct::unpack("<b", struct::pack("<b", arr.pop()))[0]); }
           let b = blob(4, 1);
           for i in 0..3 { out.push(struct::unpack_from("<B", b, { b = blob(4, i + 5); 0 })[0]); }
           let n = 3;
           for i in 0..3 { out.push(struct::unpack("<HH", struct::pack("<HH", n, n))); }
           let s = blob(2, 7);
           let f = || s.len();
           for i in 0..3 { out.push(struct::unpack("<H", s)[0]); out.push(f.call()); }
           out"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), "[2, 2, 2, 3, 2, 1, 1, 5, 6, [3, 3], [3, 3], [3, 3], 1799, 2, 1799, 2, 1799, 2]");
}

#[test]
fn a_buffer_passed_in_place_to_send_is_sent_whole_and_kept() {
    // `conn.send` reads its data in place: a loop body passes it the blob
    // variable and the string literal on every iteration.
    let v = eval(
        r#"let srv = tcp::listen("127.0.0.1", 0).serve(|c| {
               loop { let d = c.recv(100); if d.len() == 0 { break } c.send(d); }
           });
           let c = tcp::connect("127.0.0.1", srv.port);
           let msg = blob(3, 65);
           let got = [];
           for i in 0..4 { c.send(msg); c.send("x"); got.push(bytes::to_hex(c.recv_exact(4))); }
           c.close();
           srv.stop();
           [msg.len(), got]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"[3, ["41414178", "41414178", "41414178", "41414178"]]"#);
}
