//! The `http::` client against real servers on loopback: nginx (static
//! files, gzip, keep-alive), a Python `http.server` (tests/peers/http_peer.py:
//! redirects, cookies, forms, slow and lying responses, encodings), and
//! curl as a second oracle for what reaches the server.

use crate::util::{Peer, closed_port, eval, repo_root};

/// The dynamic Python peer.
fn peer() -> Peer {
    let path = repo_root().join("tests/peers/http_peer.py");
    Peer::start(&format!("import runpy; runpy.run_path({:?}, run_name='__main__')", path.display().to_string()))
}

/// Run `code` with `base` bound to the peer's `http://127.0.0.1:PORT`.
fn run(port: u16, code: &str) -> Result<rhai::Dynamic, String> {
    eval(&format!("let base = \"http://127.0.0.1:{port}\";\n{code}"))
}

fn ok(port: u16, code: &str) -> String {
    run(port, code).unwrap_or_else(|e| panic!("script failed: {e}\n{code}")).to_string()
}

/// nginx on loopback with its own configuration, files and logs in a
/// temporary directory; stopped on drop.
pub(crate) struct Nginx {
    child: std::process::Child,
    dir: std::path::PathBuf,
    pub(crate) port: u16,
    /// The same site over TLS (HTTP/1.1 and HTTP/2 by ALPN), with the
    /// test PKI's `localhost` certificate.
    pub(crate) tls_port: u16,
    /// Over TLS again, asking for a client certificate from the test CA.
    mtls_port: u16,
}

impl Nginx {
    pub(crate) fn start() -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("netscript-nginx-{}-{n}", std::process::id()));
        let www = dir.join("www");
        std::fs::create_dir_all(www.join("sub")).unwrap();
        std::fs::write(www.join("small.txt"), "hello from nginx\n").unwrap();
        let big: String = (0..20_000).map(|i| format!("line {i} of a compressible file\n")).collect();
        std::fs::write(www.join("big.txt"), &big).unwrap();
        std::fs::write(www.join("sub/index.html"), "<p>index</p>\n").unwrap();
        let port = closed_port();
        let tls_port = closed_port();
        let mtls_port = closed_port();
        let pki = crate::tls::pki();
        let conf = format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               types {{ text/plain txt; text/html html; }}\n\
               server {{ listen 127.0.0.1:{port}; listen 127.0.0.1:{tls_port} ssl http2; root {w};
                 ssl_certificate {cert}; ssl_certificate_key {key};\n\
                 gzip on; gzip_types text/plain; gzip_min_length 100;\n\
                 location = /moved {{ return 301 /small.txt; }}\n\
               }}\n\
               server {{ listen 127.0.0.1:{mtls_port} ssl; root {w};\n\
                 ssl_certificate {cert}; ssl_certificate_key {key};\n\
                 ssl_client_certificate {ca}; ssl_verify_client on;\n\
               }} }}\n",
            d = dir.display(),
            w = www.display(),
            cert = pki.path("leaf.pem"),
            key = pki.path("leaf.key"),
            ca = pki.path("ca.pem"),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut child = std::process::Command::new("nginx")
            .args([
                "-c",
                &dir.join("nginx.conf").display().to_string(),
                "-e",
                &dir.join("error.log").display().to_string(),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts (apt-get install nginx)");
        for _ in 0..200 {
            match Self::answers(port, &dir) {
                Some(true) => return Self { child, dir, port, tls_port, mtls_port },
                // Another test's server took the port between `closed_port`
                // and nginx's bind (which nginx retries for seconds): start
                // again on other ports.
                Some(false) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(&dir);
                    return Self::start();
                }
                None => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nginx did not start: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
    }

    /// Whether the server on `port` is the nginx serving `dir` (it serves
    /// the folder's name as `/id.txt`); `None` while nothing answers.
    fn answers(port: u16, dir: &std::path::Path) -> Option<bool> {
        use std::io::{Read, Write};
        let id = dir.file_name()?.to_string_lossy().into_owned();
        std::fs::write(dir.join("www/id.txt"), &id).ok()?;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /id.txt HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        Some(reply.ends_with(&id))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn get_a_static_file_from_nginx_with_its_head_and_body() {
    let ng = Nginx::start();
    let out = ok(
        ng.port,
        r#"let r = http::get(base + "/small.txt");
           [r.status, r.reason, r.version, r.headers["Content-Type"], r.headers["CONTENT-LENGTH"], r.text(), r.ok, r.url == base + "/small.txt"]"#,
    );
    assert_eq!(out, r#"[200, "OK", "HTTP/1.1", "text/plain", "17", "hello from nginx\n", true, true]"#);
}

#[test]
fn nginx_gzip_is_decoded_and_can_be_left_alone() {
    let ng = Nginx::start();
    let expected: usize = (0..20_000).map(|i| format!("line {i} of a compressible file\n").len()).sum();
    let out = ok(
        ng.port,
        r#"let r = http::get(base + "/big.txt");
           let raw = http::get(base + "/big.txt", #{decompress: false, headers: #{"Accept-Encoding": "gzip"}});
           [r.headers["content-encoding"], r.body.len(), raw.headers["content-encoding"], raw.body.len() < r.body.len(),
            raw.body[0], raw.body[1]]"#,
    );
    assert_eq!(out, format!(r#"["gzip", {expected}, "gzip", true, 31, 139]"#));
}

#[test]
fn nginx_redirect_chunked_head_and_404() {
    let ng = Nginx::start();
    let out = ok(
        ng.port,
        r#"let r = http::get(base + "/moved");
           let h = http::head(base + "/small.txt");
           let c = http::get(base + "/big.txt");
           let n = http::get(base + "/nope");
           let nf = http::get(base + "/moved", #{follow_redirects: false});
           [r.status, r.text(), r.history.len(), r.history[0].status, h.status, h.body.len(), h.headers["content-length"],
            c.headers.contains("content-length"), c.headers["transfer-encoding"], n.status, n.ok, nf.status, nf.headers["location"]]"#,
    );
    let loc = format!("http://127.0.0.1:{}/small.txt", ng.port);
    assert_eq!(
        out,
        format!(r#"[200, "hello from nginx\n", 1, 301, 200, 0, "17", false, "chunked", 404, false, 301, "{loc}"]"#)
    );
}

#[test]
fn a_session_keeps_its_connection_alive() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let s = http::session();
           let a = s.get(base + "/connid").text();
           let b = s.get(base + "/connid").text();
           let c = http::get(base + "/connid").text();
           let d = http::get(base + "/connid").text();
           [a == b, c == d]"#,
    );
    assert_eq!(out, "[true, false]");
}

#[test]
fn params_headers_form_json_and_body_reach_the_server() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let e = http::get(base + "/echo?x=1", #{params: #{q: "a b&c", tag: ["t1", "t2"], tilde: "~*"}, headers: #{"X-Test": "yes"}}).json();
           let hs = #{}; for h in e.headers { hs[h[0].to_lower()] = h[1] }
           let f = http::post(base + "/echo", #{form: #{user: "ann", pw: "p w+é"}}).json();
           let fh = #{}; for h in f.headers { fh[h[0].to_lower()] = h[1] }
           let j = http::put(base + "/echo", #{json: #{id: 1, tags: ["a"]}}).json();
           let b = http::patch(base + "/echo", #{body: blob(3, 65)}).json();
           let d = http::delete(base + "/echo").json();
           let o = http::request("options", base + "/echo", #{}).json();
           [e.method, e.query, hs["x-test"], hs["user-agent"].starts_with("netscript/"), f.method, f.body,
            fh["content-type"], j.method, json::decode(j.body), b.body, d.method, o.method]"#,
    );
    assert_eq!(
        out,
        r#"["GET", "x=1&q=a+b%26c&tag=t1&tag=t2&tilde=~%2A", "yes", true, "POST", "pw=p+w%2B%C3%A9&user=ann", "application/x-www-form-urlencoded", "PUT", #{"id": 1, "tags": ["a"]}, "AAA", "DELETE", "OPTIONS"]"#
    );
    // The query and form encodings are Python's urlencode.
    let py = crate::util::python(
        "from urllib.parse import urlencode\nprint(urlencode({'q': 'a b&c', 'tag': ['t1', 't2'], 'tilde': '~*'}, doseq=True))\n\
         print(urlencode({'pw': 'p w+é', 'user': 'ann'}))",
    );
    assert_eq!(py, "q=a+b%26c&tag=t1&tag=t2&tilde=~%2A\npw=p+w%2B%C3%A9&user=ann\n");
}

#[test]
fn multipart_fields_and_files_parse_on_the_server() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let m = http::post(base + "/multipart", #{multipart: #{
               name: "ann", n: 3,
               file: #{filename: "a.bin", content: blob(4, 0x41), content_type: "application/x-test"}}}).json();
           [m.name, m.n, m.file.filename, m.file.content_type, m.file.content]"#,
    );
    assert_eq!(out, r#"["ann", "3", "a.bin", "application/x-test", "AAAA"]"#);
}

#[test]
fn redirects_change_or_keep_the_method_as_browsers_do() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let out = [];
           for code in [301, 302, 303, 307, 308] {
               let r = http::post(base + "/redirect/" + code + "?to=/echo", #{body: "data"});
               let e = r.json();
               out.push(`${code}:${e.method}:${e.body}:${r.history.len()}:${r.history[0].status}`);
           }
           let h = http::head(base + "/redirect/303?to=/echo");
           out.push(h.method);
           out"#,
    );
    assert_eq!(
        out,
        r#"["301:GET::1:301", "302:GET::1:302", "303:GET::1:303", "307:POST:data:1:307", "308:POST:data:1:308", "HEAD"]"#
    );
}

#[test]
fn too_many_redirects_is_an_http_error_with_the_chain() {
    let p = peer();
    let e = run(p.port, r#"http::get(base + "/loop", #{max_redirects: 3})"#).unwrap_err();
    assert!(e.starts_with("http: "), "{e}");
    assert!(e.contains("too many redirects (more than 3)"), "{e}");
    assert!(e.contains("/loop -> ") && e.contains("/loop?n=1 -> ") && e.contains("/loop?n=4"), "{e}");
    let out =
        ok(p.port, r#"let r = http::get(base + "/loop", #{follow_redirects: false}); [r.status, r.history.len()]"#);
    assert_eq!(out, "[302, 0]");
}

#[test]
fn every_redirect_hop_is_checked_against_the_permissions() {
    let p = peer();
    let other = Nginx::start();
    let perms = netscript::Permissions::allow_net([format!("127.0.0.1:{}", p.port)]).unwrap();
    let host = netscript::Host::builder().permissions(perms).build().unwrap();
    let code = format!(
        r#"let base = "http://127.0.0.1:{}";
           let r = http::get(base + "/redirect/302?to=/echo");
           print(r.status);
           http::get(base + "/redirect/302?to=http://127.0.0.1:{}/small.txt")"#,
        p.port, other.port
    );
    let e = host.run_source("redirect.rhai", &code, &[]).unwrap_err();
    assert_eq!(e.kind(), "permission", "{}", e.message());
}

#[test]
fn a_login_form_sets_a_cookie_that_the_session_sends_back() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let s = http::session();
           let denied = s.get(base + "/private").status;
           let r = s.post(base + "/login", #{form: #{user: "ann", password: "secret"}});
           s.get(base + "/setcookie?theme=dark");
           let again = s.get(base + "/cookies").text().split("; "); again.sort();
           let fresh = http::get(base + "/cookies").text();
           let once = http::get(base + "/cookies", #{cookies: #{a: "1"}}).text();
           [denied, r.status, r.method, r.url.ends_with("/private"), r.text().contains("welcome ann"),
            again, fresh, once, s.cookies.session]"#,
    );
    assert_eq!(out, r#"[401, 200, "GET", true, true, ["session=tok123", "theme=dark"], "", "a=1", "tok123"]"#);
}

#[test]
fn basic_auth_and_status_errors() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let a = http::get(base + "/auth", #{auth: ["ann", "secret"]});
           let b = http::get(base + "/auth");
           let e = "no error";
           try { b.raise_for_status() } catch (err) { e = err }
           let fine = http::get(base + "/status/201");
           fine.raise_for_status();
           [a.status, a.text(), b.status, e.kind, e.code, e.message.contains("401 Client Error"), fine.status]"#,
    );
    assert_eq!(out, r#"[200, "authorized", 401, "status", "401", true, 201]"#);
}

#[test]
fn bodiless_statuses_close_and_connection_reuse_after_them() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let s = http::session();
           let a = s.get(base + "/status/204");
           let b = s.get(base + "/status/304");
           let c = s.get(base + "/close");
           let d = s.get(base + "/echo");
           [a.status, a.body.len(), b.status, b.body.len(), c.text(), c.headers["connection"], d.status]"#,
    );
    assert_eq!(out, r#"[204, 0, 304, 0, "bye", "close", 200]"#);
}

#[test]
fn every_content_coding_is_decoded() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let want = http::get(base + "/encoded/gzip").text();
           let all = [];
           for c in ["gzip", "deflate", "rawdeflate", "zstd", "br"] {
               let r = http::get(base + "/encoded/" + c);
               all.push(r.text() == want);
           }
           all.push(want.len());
           let raw = http::get(base + "/encoded/br", #{decompress: false});
           all.push(raw.body.len() < want.len());
           all"#,
    );
    assert_eq!(out, "[true, true, true, true, true, 2400, true]");
    let e = run(p.port, r#"http::get(base + "/encoded/gzip", #{max_size: 1000})"#).unwrap_err();
    assert!(e.starts_with("limit: ") && e.contains("max_size"), "{e}");
}

#[test]
fn streamed_bodies_read_by_line_size_and_chunk() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let r = http::get(base + "/chunked", #{stream: true});
           let lines = [];
           loop { let l = r.read_line(); if l == () { break } lines.push(l.as_string()) }
           let n = 0;
           for c in http::get(base + "/encoded/zstd", #{stream: true}) { n += c.len() }
           let s = http::get(base + "/page", #{stream: true});
           let first = s.read(15).as_string();
           let rest = s.body.len();
           [lines, n, first, rest > 100]"#,
    );
    assert_eq!(out, r#"[["line 0\n", "line 1\n", "line 2\n", "line 3\n", "line 4\n"], 2400, "<!doctype html>", true]"#);
}

#[test]
fn timeouts_bound_the_head_the_body_and_the_total() {
    let p = peer();
    let e = run(p.port, r#"http::get(base + "/slow?delay=3", #{timeout: 0.3})"#).unwrap_err();
    assert!(e.starts_with("timeout: "), "{e}");
    let e = run(p.port, r#"http::get(base + "/slowbody?delay=3", #{timeout: #{read: 0.3}})"#).unwrap_err();
    assert!(e.starts_with("timeout: "), "{e}");
    let e = run(p.port, r#"http::get(base + "/slow?delay=3", #{timeout: #{read: 10, total: 0.3}})"#).unwrap_err();
    assert!(e.starts_with("timeout: "), "{e}");
    let out = ok(p.port, r#"http::get(base + "/slow?delay=0.2", #{timeout: 5}).text()"#);
    assert_eq!(out, "late");
}

#[test]
fn socket_errors_keep_their_kinds() {
    let port = closed_port();
    let e = run(port, r#"http::get(base + "/")"#).unwrap_err();
    assert!(e.starts_with("refused: ") && e.contains(&format!("127.0.0.1:{port}")), "{e}");
    let e = eval(r#"http::get("http://no-such-host.invalid/")"#).unwrap_err();
    assert!(e.starts_with("dns: "), "{e}");
    let e = eval(r#"http::get("ftp://example.com/")"#).unwrap_err();
    assert!(e.starts_with("value: "), "{e}");
    let e = eval(r#"http::get("http://127.0.0.1/", #{colour: 1})"#).unwrap_err();
    assert!(e.starts_with("value: ") && e.contains("unknown option 'colour'"), "{e}");
}

#[test]
fn a_lying_content_length_and_a_huge_header_are_clear_errors() {
    let p = peer();
    let e = run(p.port, r#"http::get(base + "/lie")"#).unwrap_err();
    assert!(e.starts_with("http: ") && e.contains("after 10 bytes of the body of the 100"), "{e}");
    let out = ok(
        p.port,
        r#"let r = http::get(base + "/lie", #{stream: true});
           let got = r.read(100);
           let e = "";
           try { r.read(100); } catch (err) { e = err.kind }
           [got.len(), e]"#,
    );
    assert_eq!(out, r#"[10, "http"]"#);
    let e = run(p.port, r#"http::get(base + "/bigheader?n=100000")"#).unwrap_err();
    assert!(e.starts_with("limit: ") && e.contains("max_header_size"), "{e}");
    let out =
        ok(p.port, r#"http::get(base + "/bigheader?n=100000", #{max_header_size: 200000}).headers["x-big"].len()"#);
    assert_eq!(out, "100000");
}

#[test]
fn curl_and_http_send_the_same_request() {
    let p = peer();
    let url = format!("http://127.0.0.1:{}/echo/path?a=1", p.port);
    let curl = std::process::Command::new("curl")
        .args([
            "-sv",
            "-X",
            "POST",
            "-H",
            "X-Token: abc",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"k":"v"}"#,
            &url,
        ])
        .output()
        .expect("curl runs");
    let theirs: serde_json::Value = serde_json::from_slice(&curl.stdout).expect("curl got JSON");
    let ours = ok(
        p.port,
        &format!(
            r#"http::post("{url}", #{{headers: #{{"X-Token": "abc", "Content-Type": "application/json"}}, body: `{{"k":"v"}}`}}).text()"#
        ),
    );
    let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
    for key in ["method", "path", "query", "body"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let header = |v: &serde_json::Value, name: &str| {
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|h| h[1].clone())
    };
    for name in ["host", "x-token", "content-type", "content-length", "accept"] {
        assert_eq!(header(&ours, name), header(&theirs, name), "{name}");
    }
}

#[test]
fn trace_shows_each_request_and_response() {
    let p = peer();
    let (code, _, err) = crate::util::cli(&[
        "run",
        "--trace",
        "-e",
        &format!(
            r#"http::get("http://127.0.0.1:{0}/redirect/302?to=/status/200"); http::post("http://127.0.0.1:{0}/echo", #{{body: "ping"}});"#,
            p.port
        ),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("POST /echo HTTP/1.1") && err.contains("body, 4 bytes\n\"ping\""), "{err}");
    assert!(err.contains("GET /redirect/302?to=/status/200 HTTP/1.1"), "{err}");
    assert!(err.contains("HTTP/1.1 302 Found") && err.contains("GET /status/200 HTTP/1.1"), "{err}");
    assert!(err.contains("body, 11 bytes"), "{err}");
}

#[test]
fn example_scripts_fetch_and_log_in() {
    let p = peer();
    let base = format!("http://127.0.0.1:{}", p.port);
    let (code, out, err) =
        crate::util::cli(&["run", "scripts/fetch.rhai", &format!("{base}/redirect/301?to=/status/200")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("HTTP/1.0 301 Moved Permanently") || out.contains("301 Moved Permanently"), "{out}");
    assert!(out.contains("200 OK") && out.contains("status body"), "{out}");
    let (code, out, err) = crate::util::cli(&["run", "scripts/login.rhai", &base, "ann", "secret"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("welcome ann"), "{out}");
    let (code, _, err) = crate::util::cli(&["run", "scripts/login.rhai", &base, "ann", "wrong"]);
    assert_ne!(code, 0, "a bad password fails: {err}");
}

#[test]
fn example_script_scrapes_links_and_table_rows() {
    let p = peer();
    let base = format!("http://127.0.0.1:{}", p.port);
    let (code, out, err) = crate::util::cli(&["run", "scripts/scrape.rhai", &format!("{base}/page"), "#ports"]);
    assert_eq!(code, 0, "{err}");
    let want = format!(
        "200 {base}/page: Ports\n3 links:\n  {base}/a\n  {base}/b/c?x=1\n  http://example.com/\n\
         4 rows in #ports:\n  port | service\n  22 | ssh\n  80 | http\n  443 | https\n"
    );
    assert_eq!(out, want);
    let (code, _, err) = crate::util::cli(&["run", "scripts/scrape.rhai", &format!("{base}/page"), "#nothing"]);
    assert_ne!(code, 0);
    assert!(err.contains("no element matches #nothing"), "{err}");
}

/// `http::submit` sends what headless Chromium sends when each form's
/// submit button is clicked: method, target, Content-Type and body byte
/// for byte (the multipart boundary aside), for a GET, an urlencoded, a
/// multipart and a text/plain form with every kind of control (the
/// peer's /forms page).
#[test]
fn submit_sends_what_chromium_sends() {
    let p = peer();
    let ours = ok(
        p.port,
        r##"let doc = http::get(base + "/forms").html();
let out = "";
for f in doc.forms() { out += http::submit(f.fill(#{commit: "Save"})).html().select_one("#out").text() + "\n"; }
out"##,
    );
    let Some(theirs) = crate::util::chromium(
        "submit_sends_what_chromium_sends",
        &format!(
            r#"from selenium.webdriver.support.ui import WebDriverWait
for i in range(4):
    d.get("http://127.0.0.1:{port}/forms")
    d.find_element(By.ID, f"save{{i}}").click()
    # The click starts the navigation; wait for the answer page.
    out = WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "out"))
    print(out[0].text)"#,
            port = p.port
        ),
    ) else {
        return;
    };
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    };
    let (ours, theirs) = (parse(&ours), parse(&theirs));
    let methods: Vec<&str> = theirs.iter().map(|v| v["method"].as_str().unwrap_or_default()).collect();
    assert_eq!(methods, ["GET", "POST", "POST", "POST"]);
    assert!(theirs[2]["type"].as_str().is_some_and(|t| t.starts_with("multipart/form-data")), "{theirs:?}");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let text = |v: &serde_json::Value| {
            let hex = v["body"].as_str().unwrap_or_default();
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|j| u8::from_str_radix(&hex[j..j + 2], 16).unwrap_or(b'?')).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        assert_eq!(a, b, "form {i}:\nours:   {a}\n{}\nChromium: {b}\n{}", text(a), text(b));
    }
}

/// File inputs take their content from `files`; what a form cannot send
/// is a `value` error naming `http::submit`; a session's `submit` keeps
/// the cookies a form login sets.
#[test]
fn submit_uploads_files_and_refuses_what_a_form_cannot_send() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let page = `<form action="/multipart" method=post enctype="multipart/form-data">
<input name=title value="notes"><input type=file name=doc></form>
<form action="/echo" method=dialog><input name=x></form>`;
let doc = html::parse(page, #{url: base + "/"});
let up = doc.forms()[0];
let sent = http::submit(up, #{files: #{doc: #{filename: "a.txt", content: "line\r\n--not a boundary", content_type: "text/plain"}}}).json();
fn failure(f) { try { f.call(); return "no error"; } catch (e) { return `${e.kind}: ${e.message}`; } }
let relative = html::parse(`<form action="/echo"><input name=x></form>`).forms()[0];
let s = http::session();
let login = s.get(base + "/login").html().forms()[0].fill(#{user: "ann", password: "secret"});
let after = s.submit(login);
[
    sent.title, sent.doc.filename, sent.doc.content_type, sent.doc.content,
    failure(|| http::submit(up, #{form: #{a: 1}})),
    failure(|| http::submit(up, #{files: #{nope: #{content: "x"}}})),
    failure(|| http::submit(doc.forms()[1])),
    failure(|| http::submit(relative)),
    after.status, after.url, s.cookies.session,
]"#,
    );
    let want = "[\"notes\", \"a.txt\", \"text/plain\", \"line\\r\\n--not a boundary\", \
         \"value: http::submit: the form gives the query and the body: remove option \\\"form\\\"\", \
         \"value: http::submit: files: the form has no file input \\\"nope\\\"\", \
         \"value: http::submit: a method=dialog form submits nothing\", ";
    assert!(out.starts_with(want), "{out}\n{want}");
    assert!(
        out.contains("value: http::submit: invalid URL \\\"/echo\\\"")
            && out.contains("give html::parse the page's URL"),
        "{out}"
    );
    assert!(out.ends_with(&format!("200, \"http://127.0.0.1:{}/private\", \"tok123\"]", p.port)), "{out}");
}

#[test]
fn https_to_nginx_over_http1_and_http2_by_alpn() {
    let ng = Nginx::start();
    let ca = crate::tls::pki().path("ca.pem");
    let out = ok(
        ng.tls_port,
        &format!(
            r#"base.replace("http:", "https:");
               let one = http::get(base + "/small.txt", #{{ca: "{ca}"}});
               let two = http::get(base + "/big.txt", #{{ca: "{ca}", http2: true}});
               let s = http::session(#{{ca: "{ca}", http2: true}});
               let a = s.get(base + "/small.txt").text();
               let b = s.get(base + "/moved").text();
               let insecure = http::get(base + "/small.txt", #{{insecure: true}}).status;
               [one.version, one.text(), two.version, two.headers["content-encoding"], two.body.len(), a, b, insecure]"#
        ),
    );
    let expected: usize = (0..20_000).map(|i| format!("line {i} of a compressible file\n").len()).sum();
    assert_eq!(
        out,
        format!(
            r#"["HTTP/1.1", "hello from nginx\n", "HTTP/2.0", "gzip", {expected}, "hello from nginx\n", "hello from nginx\n", 200]"#
        )
    );
    let e = run(ng.tls_port, r#"base.replace("http:", "https:"); http::get(base + "/small.txt")"#).unwrap_err();
    assert!(e.starts_with("tls: ") && e.contains("unable to get local issuer certificate"), "{e}");
    let e = run(ng.port, r#"base.replace("http:", "https:"); http::get(base + "/small.txt", #{insecure: true})"#)
        .unwrap_err();
    assert!(e.starts_with("tls: "), "{e}");
}

#[test]
fn text_decodes_the_charset_of_content_type() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let out = [];
           for cs in ["utf-8", "iso-8859-1", "windows-1252", "shift_jis", "utf-16"] {
               out.push(http::get(base + "/charset?cs=" + cs).text());
           }
           out"#,
    );
    // What requests' r.text gives for the same responses.
    let py = crate::util::python(&format!(
        "import requests\nfor cs in ['utf-8', 'iso-8859-1', 'windows-1252', 'shift_jis', 'utf-16']:\n    \
         print(requests.get('http://127.0.0.1:{}/charset?cs=' + cs).text)",
        p.port
    ));
    let want: Vec<String> = py.lines().map(|l| format!("{l:?}")).collect();
    assert_eq!(out, format!("[{}]", want.join(", ")));
}

#[test]
fn informational_responses_before_the_final_one_are_skipped() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let s = http::session();
           let r = s.get(base + "/early");
           let again = s.get(base + "/status/200");
           [r.status, r.text(), r.headers.contains("link"), again.text()]"#,
    );
    assert_eq!(out, r#"[200, "after the hints", false, "status body"]"#);
}

#[test]
fn redirect_locations_resolve_as_requests_resolves_them() {
    let p = peer();
    let port = p.port;
    let locations = [
        "/echo".to_string(),
        "../../../echo?x=1".into(),
        "../../../../../status/200".into(),
        "echo".into(),
        "?z=2".into(),
        format!("//127.0.0.1:{port}/echo?y"),
        format!("http://127.0.0.1:{port}/status/200"),
        "/echo#there".into(),
        "/a b/../echo".into(),
        ";p?q".into(),
    ];
    let quoted: Vec<String> =
        locations.iter().map(|l| format!("{:?}", netscript_stdlib::url::quote(l.as_bytes(), b""))).collect();
    let list = quoted.join(", ");
    // Starting from a URL with a fragment: a Location without one keeps it.
    let ours = ok(
        port,
        &format!(
            r##"let out = [];
               for to in [{list}] {{
                   let r = http::get(base + "/redirect/302/a/b?to=" + to + "#top");
                   out.push(`${{r.status}} ${{r.history[0].url}} -> ${{r.url}}`);
               }}
               out.reduce(|acc, l| acc + l + "\n", "")"##
        ),
    );
    let theirs = crate::util::python(&format!(
        "import requests\nfor to in [{list}]:\n    \
         r = requests.get('http://127.0.0.1:{port}/redirect/302/a/b?to=' + to + '#top')\n    \
         print(f'{{r.status_code}} {{r.history[0].url}} -> {{r.url}}')"
    ));
    assert_eq!(ours, theirs);
}

#[test]
fn cancelling_a_task_stops_its_request() {
    let p = peer();
    let out = ok(
        p.port,
        r#"let t = task::start(|| http::get(base + "/slow?delay=30").text());
           task::sleep(0.3);
           t.cancel();
           let kind = "";
           try { t.join() } catch (e) { kind = e.kind }
           [kind, http::get(base + "/status/200").text()]"#,
    );
    assert_eq!(out, r#"["cancelled", "status body"]"#);
}

#[test]
fn a_client_certificate_from_cert_and_key() {
    let ng = Nginx::start();
    let pki = crate::tls::pki();
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client.key"));
    let out = ok(
        ng.mtls_port,
        &format!(
            r#"base.replace("http:", "https:");
               let signed = http::get(base + "/small.txt", #{{ca: "{ca}", cert: "{cert}", key: "{key}"}});
               let anonymous = http::get(base + "/small.txt", #{{ca: "{ca}"}});
               [signed.status, signed.text(), anonymous.status]"#
        ),
    );
    // nginx answers a missing client certificate with 400.
    assert_eq!(out, r#"[200, "hello from nginx\n", 400]"#);
}

#[test]
fn response_heads_read_as_the_server_sent_them() {
    // A raw server: an HTTP/1.0 status with a reason of its own, a repeated
    // header around another one, and a value that is not UTF-8.
    let p = Peer::start(
        r"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0)); s.listen(8); print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    data = b''
    while b'\r\n\r\n' not in data:
        data += c.recv(4096)
    c.sendall(b'HTTP/1.0 299 Fine Thanks\r\nSet-Cookie: a=1\r\nX-Thing: one\r\nSet-Cookie: b=2\r\n'
              b'X-Bytes: caf\xe9\r\nContent-Length: 2\r\n\r\nok')
    c.close()
",
    );
    let out = ok(
        p.port,
        r#"let r = http::get(base + "/");
           let h = r.headers;
           [r.status, r.reason, r.version, r.text(), h.len, h.items(), h.get_all("SET-COOKIE"), h["set-cookie"],
            h.contains("X-THING"), h.contains("x-nope"), h["x-bytes"], h.get("x-nope", "none"), h.to_string()]"#,
    );
    // (U+FFFD stands for the byte that is not UTF-8.)
    assert_eq!(
        out,
        concat!(
            r#"[299, "Fine Thanks", "HTTP/1.0", "ok", 5, "#,
            r#"[["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-thing", "one"], ["x-bytes", "caf\u{fffd}"], ["content-length", "2"]], "#,
            r#"["a=1", "b=2"], "a=1, b=2", true, false, "caf\u{fffd}", "none", "#,
            r#""set-cookie: a=1\nset-cookie: b=2\nx-thing: one\nx-bytes: caf\u{fffd}\ncontent-length: 2"]"#
        )
        .replace(r"\u{fffd}", "\u{fffd}")
    );
}
