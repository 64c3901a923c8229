//! Shared helpers: evaluate a script, run the built binary, find peers.

#![allow(dead_code)]

use rhai::Dynamic;

/// Evaluate `code` as a script and return its value, or the error's text.
///
/// Errors come back as `"kind: message"` so tests can assert on the kind.
pub fn eval(code: &str) -> Result<Dynamic, String> {
    let host = netscript::Host::builder().build().expect("host starts");
    host.run_source("<test>", code, &[]).map_err(|e| format!("{}: {}", e.kind(), e.message()))
}

/// [`eval`] on a host whose blobs and arrays are limited to `max_array_size`.
pub fn eval_limited(code: &str, max_array_size: usize) -> Result<Dynamic, String> {
    let limits = netscript::Limits { max_array_size, ..netscript::Limits::default() };
    let host = netscript::Host::builder().limits(limits).build().expect("host starts");
    host.run_source("<test>", code, &[]).map_err(|e| format!("{}: {}", e.kind(), e.message()))
}

/// Run the built `netscript` binary with `args`; returns (status, stdout, stderr).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    cli_stdin(args, "")
}

/// Like [`cli`], feeding `stdin` to the process.
pub fn cli_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netscript"))
        .args(args)
        .current_dir(repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("netscript starts");
    let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("netscript runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The repository's top directory (scripts are referred to from there).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// `"kind: message"` for a script error raised by the standard library.
pub fn describe(err: &rhai::EvalAltResult) -> String {
    use rhai::EvalAltResult as E;
    match err {
        E::ErrorInFunctionCall(_, _, inner, _) | E::ErrorInModule(_, inner, _) => describe(inner),
        E::ErrorRuntime(value, _) => match value.read_lock::<rhai::Map>() {
            Some(m) => format!(
                "{}: {}",
                m.get("kind").map(ToString::to_string).unwrap_or_default(),
                m.get("message").map(ToString::to_string).unwrap_or_default()
            ),
            None => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// Run `python3 -c code` and return its standard output.
pub fn python(code: &str) -> String {
    let out = std::process::Command::new("python3").arg("-c").arg(code).output().expect("python3 runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Start the built `netscript` with `args` from the repository root, its
/// stdout and stderr piped, and wait for its first line of output.
pub fn netscript_first_line(args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netscript"))
        .args(args)
        .current_dir(repo_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("netscript starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("first line");
    (child, line)
}

/// A peer process on loopback (a Python program or a netscript script);
/// killed when dropped, so a failing test never leaks it.
pub struct Peer {
    child: std::process::Child,
    /// The port the peer printed on its first line (`9000` or `… on 127.0.0.1:9000`).
    pub port: u16,
}

impl Peer {
    /// Start `python3 -c code`; the code must print its port on the first line.
    pub fn start(code: &str) -> Self {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-u").arg("-c").arg(code);
        Self::spawn(cmd)
    }

    /// Start the built `netscript` with `args` from the repository root; the
    /// script must print its port (last `:`-separated field) on the first line.
    pub fn netscript(args: &[&str]) -> Self {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netscript"));
        cmd.args(args).current_dir(repo_root());
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: std::process::Command) -> Self {
        use std::io::BufRead;
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("peer starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("port line");
        let field = line.trim().rsplit(':').next().unwrap_or_default();
        let port = field.parse().unwrap_or_else(|_| panic!("peer printed {line:?}, not a port"));
        Self { child, port }
    }
}

impl Peer {
    /// The peer's process id (to read its `/proc/PID` figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
