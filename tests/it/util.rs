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

/// Run Python `code` with `d`, a headless Chromium driven through Selenium
/// (and `By` imported), and return its standard output; `None` (after
/// saying so) when Chromium, chromedriver or Selenium is missing.
pub fn chromium(test: &str, code: &str) -> Option<String> {
    let have = |cmd: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let selenium = std::process::Command::new("python3")
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(have("chromium") && have("chromedriver") && selenium) {
        eprintln!(
            "SKIPPED {test}: needs Debian chromium + chromium-driver and PyPI selenium (tests/run installs them)"
        );
        return None;
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("netscript-chromium-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("profile dir");
    let body: String = code.lines().map(|l| format!("    {l}\n")).collect();
    let out = python(&format!(
        r##"
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--user-data-dir={profile}"]:
    o.add_argument(a)
d = webdriver.Chrome(options=o, service=Service("/usr/bin/chromedriver"))
try:
{body}finally:
    d.quit()
"##,
        profile = profile.display(),
    ));
    let _ = std::fs::remove_dir_all(&profile);
    Some(out)
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
    /// The port the peer printed on its first line (`9000` or `… on
    /// 127.0.0.1:9000`; the last of several: `9000 9001`).
    pub port: u16,
    /// That whole first line, trimmed.
    pub line: String,
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

    /// Start `python3 tests/peers/FILE ARGS…`; its first line is kept in
    /// `line` (and `port` is its last number, or 0).
    pub fn script(file: &str, args: &[&str]) -> Self {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-u").arg(repo_root().join("tests/peers").join(file)).args(args);
        Self::spawn_line(cmd).0
    }

    fn spawn(cmd: std::process::Command) -> Self {
        let (peer, ok) = Self::spawn_line(cmd);
        assert!(ok, "peer printed {:?}, not a port", peer.line);
        peer
    }

    /// Start `cmd` and read its first line, a byte at a time (so what it
    /// prints later is left for [`Peer::output`]); whether it ends in a port.
    fn spawn_line(mut cmd: std::process::Command) -> (Self, bool) {
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("peer starts");
        let line = read_line(child.stdout.as_mut().expect("stdout"));
        let port = line.rsplit([':', ' ']).next().and_then(|f| f.parse().ok());
        (Self { child, port: port.unwrap_or(0), line }, port.is_some())
    }

    /// The next line the peer prints (read a byte at a time, as the first).
    pub fn next_line(&mut self) -> String {
        read_line(self.child.stdout.as_mut().expect("stdout"))
    }

    /// Wait for the peer to exit and return the rest of its standard output.
    pub fn output(mut self) -> String {
        use std::io::Read;
        let mut rest = String::new();
        self.child.stdout.take().expect("stdout").read_to_string(&mut rest).expect("peer output");
        let _ = self.child.wait();
        rest
    }
}

impl Peer {
    /// The peer's process id (to read its `/proc/PID` figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// One line of `out`, trimmed, read a byte at a time (nothing past it is consumed).
fn read_line(out: &mut impl std::io::Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).expect("peer's output") == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim().to_string()
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
