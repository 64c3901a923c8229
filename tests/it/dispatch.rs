//! Function dispatch through the vendored Rhai's call caches
//! (`vendor/README.md`): a call that has resolved once is sent straight to
//! its function afterwards, and these tests pin down that the cached path
//! always picks the function the full lookup would pick.

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
