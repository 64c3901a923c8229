//! `netscript watch`: a save swaps the functions of a serving script while
//! its listening socket and an established connection stay open; a syntax
//! error keeps the running version; a finished script re-runs.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// The watcher process; killed (by its own pid) when dropped.
pub(crate) struct Watch {
    child: Child,
    lines: Receiver<String>,
}

impl Watch {
    pub(crate) fn start(file: &std::path::Path) -> Self {
        Self::with_args(&["watch", &file.display().to_string()])
    }

    /// `netscript ARGS…`, watched the same way.
    pub(crate) fn with_args(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netscript"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("netscript watch starts");
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines }
    }

    /// Wait for a line containing `needle`; returns it.
    pub(crate) fn expect(&self, needle: &str) -> String {
        self.expect_all(&[needle]).remove(0)
    }

    /// Wait for lines containing each of `needles`, in any order (stdout
    /// and stderr are read by two threads).
    pub(crate) fn expect_all(&self, needles: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        while found.iter().any(Option::is_none) {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    if let Some(i) =
                        needles.iter().enumerate().position(|(i, n)| found[i].is_none() && line.contains(n))
                    {
                        found[i] = Some(line);
                    }
                }
                Err(_) => panic!("no line containing each of {needles:?} from netscript watch"),
            }
        }
        found.into_iter().flatten().collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netscript-watch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Save like an editor: write a new file, rename it over the old one.
pub(crate) fn save(path: &std::path::Path, code: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, code).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

const SERVER: &str = r#"
fn reply(l) { "v1 " + l }
fn handler(c) {
    loop {
        let l = c.recv_line();
        if l == () { break }
        c.send(reply(l) + "\n");
    }
}
fn on_reload() { print("on_reload ran") }
let s = tcp::listen("127.0.0.1", 0).serve(Fn("handler"));
print(`port ${s.port}`);
s.wait();
"#;

fn ask(conn: &mut BufReader<TcpStream>, line: &str) -> String {
    conn.get_mut().write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut reply = String::new();
    conn.read_line(&mut reply).expect("reply");
    reply.trim_end().to_string()
}

#[test]
fn reload_swaps_handler_for_established_connection() {
    let dir = scratch("swap");
    let file = dir.join("server.rhai");
    std::fs::write(&file, SERVER).expect("write");
    let w = Watch::start(&file);
    let port: u16 = w.expect("port ").trim().trim_start_matches("port ").parse().expect("port number");
    let mut conn = BufReader::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    assert_eq!(ask(&mut conn, "a"), "v1 a");

    save(&file, &SERVER.replace("\"v1 \"", "\"v2 \""));
    w.expect_all(&["reloaded", "on_reload ran"]);
    // Same connection, same loop iteration code, new function.
    assert_eq!(ask(&mut conn, "b"), "v2 b");

    // A syntax error is reported with its position; v2 keeps serving.
    save(&file, &SERVER.replace("fn reply(l) {", "fn reply(l) {{"));
    let lines = w.expect_all(&["syntax", "previous version keeps running"]);
    assert!(lines[0].contains("server.rhai:"), "{lines:?}");
    assert_eq!(ask(&mut conn, "c"), "v2 c");
    // New connections reach the same listening socket.
    let mut other = BufReader::new(TcpStream::connect(("127.0.0.1", port)).expect("connect again"));
    assert_eq!(ask(&mut other, "d"), "v2 d");
}

#[test]
fn finished_script_reruns_on_save() {
    let dir = scratch("rerun");
    let file = dir.join("once.rhai");
    std::fs::write(&file, "print(\"run one\");").expect("write");
    let w = Watch::start(&file);
    w.expect_all(&["run one", "finished"]);
    save(&file, "print(\"run two\");");
    w.expect_all(&["restarting", "run two"]);
}
