//! `netscript test`: the project's own script tests pass through it, and the
//! runner reports failures, filters, writes JUnit and catches leaks.

use crate::util::{cli, python};

/// A fresh directory for test files of one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netscript-runner-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &std::path::Path, file: &str, code: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, code).expect("write test file");
    path.display().to_string()
}

#[test]
fn project_script_tests_pass() {
    let (status, out, err) = cli(&["test", "tests/scripts"]);
    assert_eq!(status, 0, "script tests failed:\n{out}\n{err}");
    assert!(out.lines().any(|l| l.ends_with(" passed, 0 failed")), "{out}");
}

#[test]
fn failing_case_is_reported_and_exits_1() {
    let dir = scratch("fail");
    let file = write(
        &dir,
        "a_test.rhai",
        "fn test_good() { assert_eq(1 + 1, 2); }\nfn test_bad() { assert_eq(\"abc\".to_blob(), \"abd\".to_blob()); }\n",
    );
    let (status, out, _) = cli(&["test", &file]);
    assert_eq!(status, 1, "{out}");
    assert!(out.lines().any(|l| l == "1 passed, 1 failed"), "{out}");
    assert!(out.contains("FAIL  test_bad"), "{out}");
    // The blob diff is a hexdump of both sides.
    assert!(out.contains("- 00000000: 6162 63") && out.contains("+ 00000000: 6162 64"), "{out}");
}

#[test]
fn setup_teardown_and_error_kinds() {
    let dir = scratch("setup");
    let file = write(
        &dir,
        "b_test.rhai",
        r#"
fn setup() { print("setup"); }
fn teardown() { print("teardown"); }
fn test_kind() { assert_error(|| throw #{kind: "value", message: "m", op: "o", peer: ()}, "value"); }
fn test_wrong_kind() { assert_error(|| 1, "value"); }
fn test_match() { assert_match("SSH-2.0-OpenSSH_9.6", "^SSH-2\\.0-"); }
"#,
    );
    let (status, out, _) = cli(&["test", &file]);
    assert_eq!(status, 1, "{out}");
    assert!(out.lines().any(|l| l == "2 passed, 1 failed"), "{out}");
    assert_eq!(out.matches("setup\n").count(), 3, "{out}");
    assert_eq!(out.matches("teardown\n").count(), 3, "{out}");
    assert!(out.contains("expected a `value` error, but the call returned 1"), "{out}");
}

#[test]
fn filter_selects_cases() {
    let dir = scratch("filter");
    let file = write(&dir, "c_test.rhai", "fn test_one() {}\nfn test_two() { assert(false); }\n");
    let (status, out, _) = cli(&["test", "--filter", "one", &file]);
    assert_eq!(status, 0, "{out}");
    assert!(out.lines().any(|l| l == "1 passed, 0 failed"), "{out}");
    assert!(!out.contains("test_two"), "{out}");
}

#[test]
fn junit_output_parses() {
    let dir = scratch("junit");
    let file =
        write(&dir, "d_test.rhai", "fn test_ok() {}\nfn test_no() { assert(1 == 2, \"one is <not> two & so on\"); }\n");
    let xml = dir.join("out.xml");
    let (status, _, _) = cli(&["test", "--junit", &xml.display().to_string(), &file]);
    assert_eq!(status, 1);
    let summary = python(&format!(
        "import xml.etree.ElementTree as E\nr=E.parse({:?}).getroot()\ns=r.find('testsuite')\n\
         print(s.get('tests'), s.get('failures'), [c.get('name') for c in s.iter('testcase')], s.find('testcase/failure').get('message'))",
        xml.display().to_string()
    ));
    assert!(summary.starts_with("2 1 ['test_ok', 'test_no'] "), "{summary}");
    assert!(summary.trim().ends_with("assert: one is <not> two & so on"), "{summary}");
}

#[test]
fn tap_output() {
    let dir = scratch("tap");
    let file = write(&dir, "e_test.rhai", "fn test_ok() {}\nfn test_no() { assert(false); }\n");
    let (status, out, _) = cli(&["test", "--tap", &file]);
    assert_eq!(status, 1);
    assert!(out.starts_with("TAP version 13\n"), "{out}");
    assert!(out.contains("\nok 1 - ") && out.contains("\nnot ok 2 - ") && out.contains("\n1..2\n"), "{out}");
}

#[test]
fn leaked_socket_and_timeout_are_failures() {
    let dir = scratch("leak");
    let file = write(
        &dir,
        "f_test.rhai",
        r#"
fn test_leaks_server() { let s = tcp::listen("127.0.0.1", 0).serve(|c| c.send("x")); }
fn test_after_leak_is_clean() { let l = tcp::listen("127.0.0.1", 0); l.close(); }
fn test_hangs() { task::sleep(10); }
"#,
    );
    let (status, out, _) = cli(&["test", "--timeout", "0.3", &file]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("FAIL  test_leaks_server") && out.contains("socket(s) left open"), "{out}");
    assert!(out.contains("ok    test_after_leak_is_clean"), "{out}");
    assert!(out.contains("FAIL  test_hangs") && out.contains("timeout"), "{out}");
    assert!(out.lines().any(|l| l == "1 passed, 2 failed"), "{out}");
}

#[test]
fn printing_into_a_closed_pipe_ends_the_script_quietly() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netscript"))
        .args(["run", "-e", "let i = 0; loop { print(i); i += 1; }"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("netscript starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: Vec<String> = lines.by_ref().take(3).map(|l| l.expect("line")).collect();
    assert_eq!(first, ["0", "1", "2"]);
    drop(lines); // the reader goes, as `| head -n 3` does
    let out = child.wait_with_output().expect("netscript ends");
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no panic, no message");
}
