//! `netscript repl` driven in a real terminal (tmux): state persists across
//! lines, values print as hexdumps and handles, Ctrl-C interrupts a blocking
//! call without ending the session, errors show a caret, `.save` writes the
//! session. The peer is a CPython server.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::Peer;

/// A tmux session running the REPL; killed when dropped.
struct Term {
    name: String,
}

impl Term {
    fn start(tag: &str) -> Self {
        let name = format!("netscript-repl-{}-{tag}", std::process::id());
        let history = std::env::temp_dir().join(format!("{name}.history"));
        let cmd = format!("{} repl --history {}", env!("CARGO_BIN_EXE_netscript"), history.display());
        // Tests run in parallel: two `new-session`s racing to start the tmux
        // server can make one fail, so try a few times before giving up.
        let mut last = String::new();
        let started = (0..5).any(|attempt| {
            std::thread::sleep(Duration::from_millis(200 * attempt));
            match Command::new("tmux").args(["new-session", "-d", "-s", &name, "-x", "200", "-y", "100", &cmd]).output()
            {
                Ok(out) if out.status.success() => true,
                Ok(out) => {
                    last = String::from_utf8_lossy(&out.stderr).into_owned();
                    false
                }
                Err(e) => {
                    last = format!("{e} (apt-get install tmux: the REPL is tested in a real terminal)");
                    false
                }
            }
        });
        assert!(started, "tmux new-session failed: {last}");
        let t = Self { name };
        t.wait_for("Ctrl-D to leave");
        t
    }

    /// Type `text` literally, then Enter.
    fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().expect("tmux").success());
    }

    fn screen(&self) -> String {
        let out =
            Command::new("tmux").args(["capture-pane", "-p", "-S", "-200", "-t", &self.name]).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen contains `needle` (appearing `n` times).
    fn wait_for_n(&self, needle: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(needle).count() >= n {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "timed out waiting for {needle:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

/// A CPython TCP server that answers every line with `echo: <line>` and
/// never answers `silence` (killed when dropped).
fn python_server() -> Peer {
    Peer::start(
        r"
import socket, threading
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()
print(s.getsockname()[1], flush=True)
def serve(c):
    f = c.makefile('rwb')
    for l in f:
        if l.strip() != b'silence':
            f.write(b'echo: ' + l); f.flush()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
",
    )
}

#[test]
fn repl_session_against_python_server() {
    let t = Term::start("session");
    let server = python_server();
    let port = server.port;
    t.line(&format!("let c = tcp::connect(\"127.0.0.1\", {port});"));
    t.line("c");
    t.wait_for(&format!("-> 127.0.0.1:{port} (open)"));
    t.line("c.send(\"hello\\n\"); c.recv_line()");
    t.wait_for("\"echo: hello\"");
    // A long reply prints as a hexdump.
    t.line("c.send(\"0123456789abcdefXYZ\\n\"); c.recv(100)");
    t.wait_for("00000000: 6563 686f 3a20 3031 3233 3435 3637 3839  echo: 0123456789");
    // Multi-line input: a function over three lines.
    t.line("fn twice(x) {");
    t.line("  x * 2");
    t.line("}");
    t.line("twice(21)");
    t.wait_for("\n42\n");
    // Ctrl-C interrupts a blocking recv; the session and the connection live on.
    t.line("c.send(\"silence\\n\"); c.recv_line()");
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.wait_for("interrupted");
    t.line("c.send(\"again\\n\"); c.recv_line()");
    t.wait_for("\"echo: again\"");
    // Errors show a caret and do not end the REPL.
    t.line("1 +* 2");
    t.wait_for("syntax: Unexpected '*'");
    t.line(".help tcp::connect");
    t.wait_for("tcp::connect(host: string, port: int) -> Conn");
    let saved = std::env::temp_dir().join(format!("netscript-repl-{}.rhai", std::process::id()));
    t.line(&format!(".save {}", saved.display()));
    t.wait_for("saved ");
    let text = std::fs::read_to_string(&saved).expect("saved session");
    std::fs::remove_file(&saved).ok();
    assert!(text.contains("fn twice(x) {") && text.contains("let c = tcp::connect"), "{text}");
    assert!(!text.contains("1 +* 2"), "failed inputs are not saved: {text}");
    t.line(".quit");
    drop(server);
}

#[test]
fn repl_completes_methods_of_a_variable() {
    let t = Term::start("complete");
    t.line("let l = tcp::listen(\"127.0.0.1\", 0);");
    t.keys(&["-l", "l.por"]);
    t.keys(&["Tab"]);
    t.keys(&["Enter"]);
    // Completed to `l.port`, which evaluates to a port number.
    let screen = t.wait_for("> l.port");
    assert!(screen.contains("> l.port\n"), "{screen}");
    t.line(".quit");
}

#[test]
fn repl_helps_completes_and_shows_tls_connections() {
    let srv = crate::tls::SServer::start("leaf", &[]);
    let ca = crate::tls::pki().path("ca.pem");
    let t = Term::start("tls");
    t.line(".help tls::connect");
    t.wait_for("tls::connect(host: string, port: int) -> Conn");
    t.wait_for("hostname_mismatch");
    // Module functions complete, and so do the methods and properties of a TLS connection.
    t.keys(&["-l", "let c = tls::conn"]);
    t.keys(&["Tab"]);
    t.line(&format!("(\"localhost\", {}, #{{ca: \"{ca}\"}});", srv.port));
    t.wait_for("let c = tls::connect(\"localhost\"");
    t.line("c");
    let screen = t.wait_for(&format!("-> 127.0.0.1:{} (open, TLSv1.3 ", srv.port));
    assert!(screen.contains("tls 127.0.0.1:") && screen.contains(", verified)"), "{screen}");
    t.keys(&["-l", "c.peer_cha"]);
    t.keys(&["Tab"]);
    t.line("().len()");
    t.wait_for("> c.peer_chain().len()\n1\n");
    t.keys(&["-l", "c.tl"]);
    t.keys(&["Tab"]);
    t.line(".version");
    t.wait_for("\"TLSv1.3\"");
    t.line(".quit");
}

#[test]
fn repl_pcap_captures_the_lines_between_on_and_off() {
    let t = Term::start("pcap");
    let server = python_server();
    let file = std::env::temp_dir().join(format!("netscript-repl-{}.pcapng", std::process::id()));
    t.line(&format!(".pcap {}", file.display()));
    t.wait_for("capturing to ");
    t.line(&format!("let c = tcp::connect(\"127.0.0.1\", {}); c.send(\"captured\\n\"); c.recv_line()", server.port));
    t.wait_for("\"echo: captured\"");
    t.line(".pcap off");
    t.wait_for("capture off");
    t.line("c.send(\"not captured\\n\"); c.recv_line()");
    t.wait_for("\"echo: not captured\"");
    let follow = Command::new("tshark")
        .args(["-r", &file.display().to_string(), "-q", "-z", "follow,tcp,ascii,0"])
        .output()
        .expect("tshark (apt-get install tshark)");
    let text = String::from_utf8_lossy(&follow.stdout);
    assert!(text.contains("echo: captured") && !text.contains("not captured"), "{text}");
    t.line(".quit");
    let _ = std::fs::remove_file(&file);
}
