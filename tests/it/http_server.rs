//! `http::` server against real clients: curl (HTTP/1.1, h2c, multipart,
//! slow uploads), Python `requests` (sessions, cookies, redirects), raw
//! sockets (garbage, slowloris, drops mid-request), headless Chromium
//! driven by Selenium (the guestbook's POST-redirect-GET), and hot reload
//! under `netscript watch`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::util::{Peer, python};

/// Start `code` (which must print its URL first) with `netscript run -e`.
fn server(code: &str) -> Peer {
    Peer::netscript(&["run", "-e", code])
}

/// Run curl with `args`; returns its standard output.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["-s", "--max-time", "20"]).args(args).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `curl -i`: the status code, the header block (lowercase) and the body.
fn curl_i(args: &[&str]) -> (u16, String, String) {
    let out = curl(&[&["-i"], args].concat());
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn url(peer: &Peer, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", peer.port)
}

/// Send raw bytes on a new connection and read the reply until EOF (or 10 s).
fn raw(peer: &Peer, data: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", peer.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(data).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

const CONVENTIONS: &str = r#"
let r = http::router();
r.get("/", |req| "<h1>home</h1>");
r.get("/blob", |req| blob(3, 65));
r.get("/json/:id", |req| #{id: req.params.id, q: req.query, ua: req.header("USER-AGENT"), h: req.headers["x-test"]});
r.get("/none", |req| ());
r.post("/created", |req| http::response(201, req.json(), #{"X-Made": "yes"}));
r.get("/go", |req| http::redirect("/"));
r.get("/gone", |req| http::redirect("/new", 301));
r.get("/missing", |req| http::not_found());
r.get("/files/*rest", |req| req.params.rest);
r.any("/any", |req| req.method);
r.get("/boom", |req| { let x = 1; throw "kaboom " + x; });
r.get("/stream", |req| http::stream(|w| { for i in 0..3 { w.write("chunk" + i + ";"); task::sleep(0.02); } }));
r.post("/len", |req| `${req.body.len()}`);
let s = http::listen("127.0.0.1", 0, #{http2: true}).serve(r);
print(s.url);
s.wait();
"#;

#[test]
fn return_conventions_and_routing_with_curl() {
    let p = server(CONVENTIONS);
    let (status, head, body) = curl_i(&[&url(&p, "/")]);
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"));
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");

    let (status, head, body) = curl_i(&[&url(&p, "/blob")]);
    assert_eq!((status, body.as_str()), (200, "AAA"));
    assert!(head.contains("content-type: application/octet-stream"), "{head}");

    let (status, head, body) =
        curl_i(&["-A", "probe/1", "-H", "X-Test: t1", &url(&p, "/json/42?a=1&a=2&b=x+y&empty=")]);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    let got = python(&format!(
        "import json; v = json.loads({body:?}); print(v['id'], v['q'] == {{'a': ['1', '2'], 'b': ['x y']}}, v['ua'], v['h'])"
    ));
    assert_eq!(got.trim(), "42 True probe/1 t1");

    assert_eq!(curl_i(&[&url(&p, "/none")]).0, 204);
    let (status, head, body) =
        curl_i(&["-H", "Content-Type: application/json", "-d", r#"{"n": [1, 2]}"#, &url(&p, "/created")]);
    assert_eq!((status, body.as_str()), (201, r#"{"n":[1,2]}"#));
    assert!(head.contains("x-made: yes"), "{head}");

    let (status, head, _) = curl_i(&[&url(&p, "/go")]);
    assert_eq!(status, 303);
    assert!(head.contains("location: /"), "{head}");
    assert_eq!(curl_i(&[&url(&p, "/gone")]).0, 301);
    assert_eq!(curl_i(&[&url(&p, "/missing")]).0, 404);
    assert_eq!(curl_i(&[&url(&p, "/nowhere")]).0, 404);
    assert_eq!(curl_i(&[&url(&p, "/files/a/b%20c")]).2, "a/b c");
    assert_eq!(curl_i(&["-X", "PATCH", &url(&p, "/any")]).2, "PATCH");

    // 405 with Allow; HEAD follows GET without a body.
    let (status, head, _) = curl_i(&["-X", "DELETE", &url(&p, "/")]);
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");
    let (status, head, body) = curl_i(&["-I", &url(&p, "/")]);
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(head.contains("content-length: 13"), "{head}");

    // A throwing handler is a 500 without details; the server goes on.
    let (status, _, body) = curl_i(&[&url(&p, "/boom")]);
    assert_eq!(status, 500);
    assert!(!body.contains("kaboom"), "{body}");
    assert_eq!(curl_i(&[&url(&p, "/")]).0, 200);

    // Streaming arrives whole, chunked.
    let (status, head, body) = curl_i(&[&url(&p, "/stream")]);
    assert_eq!((status, body.as_str()), (200, "chunk0;chunk1;chunk2;"));
    assert!(head.contains("transfer-encoding: chunked"), "{head}");

    // HTTP/2 with prior knowledge (h2c).
    let out = curl(&["--http2-prior-knowledge", "-w", " %{http_version}", &url(&p, "/json/7")]);
    assert!(out.contains(r#""id":"7""#), "{out}");
    assert!(out.ends_with(" 2"), "{out}");

    // A slow upload (10 kB/s for 40 kB) arrives whole.
    let dir = std::env::temp_dir().join(format!("netscript-http-upload-{}", std::process::id()));
    std::fs::write(&dir, vec![b'x'; 40_000]).expect("write");
    let out = curl(&["--limit-rate", "10k", "--data-binary", &format!("@{}", dir.display()), &url(&p, "/len")]);
    assert_eq!(out, "40000");
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn debug_servers_show_the_error_with_its_position() {
    let p = server(
        r#"let s = http::listen("127.0.0.1", 0, #{"debug": true}).serve(|req| { let v = 1;
throw "broken " + v; });
print(s.url); s.wait();"#,
    );
    let (status, _, body) = curl_i(&[&url(&p, "/")]);
    assert_eq!(status, 500);
    assert!(body.contains("broken 1") && body.contains("line 2"), "{body}");
}

#[test]
fn multipart_and_urlencoded_forms() {
    let p = server(
        r#"let s = http::listen("127.0.0.1", 0).serve(|req| {
    let f = req.form();
    if "upload" in f {
        `${f.name}|${f.upload.filename}|${f.upload.content_type}|${f.upload.data.len()}|${f.upload.data.as_string()}`
    } else { `${f.name}|${f.tag}` }
});
print(s.url); s.wait();"#,
    );
    let file = std::env::temp_dir().join(format!("netscript-http-form-{}.txt", std::process::id()));
    std::fs::write(&file, "hello file").expect("write");
    let out =
        curl(&["-F", "name=Ann Lee", "-F", &format!("upload=@{};type=text/plain", file.display()), &url(&p, "/")]);
    let fname = file.file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(out, format!("Ann Lee|{fname}|text/plain|10|hello file"));
    let out = curl(&["-d", "name=a+b%21&tag=1&tag=2", &url(&p, "/")]);
    assert_eq!(out, "a b!|[\"1\", \"2\"]");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn limits_answer_413_431_400_and_drop_slow_headers() {
    let p = server(
        r#"let s = http::listen("127.0.0.1", 0, #{max_body: 1000, max_headers: 20, header_timeout: 0.5})
    .serve(|req| `got ${req.body.len()}`);
print(s.url); s.wait();"#,
    );
    assert_eq!(curl(&["-d", &"x".repeat(1000), &url(&p, "/")]), "got 1000");
    assert_eq!(curl_i(&["-d", &"x".repeat(1001), &url(&p, "/")]).0, 413);
    // Chunked, so no Content-Length announces the size.
    let big = format!("{:x}\r\n{}\r\n0\r\n\r\n", 5000, "y".repeat(5000));
    let reply = raw(&p, format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{big}").as_bytes());
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let reply = raw(&p, format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes());
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let reply = raw(&p, b"\x16\x03\x01 garbage\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // Slowloris: half a request head, then nothing; the server hangs up.
    let reply = raw(&p, b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(!reply.contains("got"), "{reply}");
    assert_eq!(curl(&[&url(&p, "/")]), "got 0");
    // The head timeout does not apply to a kept-alive connection between requests.
    let mut conn = std::io::BufReader::new(TcpStream::connect(("127.0.0.1", p.port)).expect("connect"));
    assert_eq!(keep_alive_get(&mut conn, "/"), "got 0");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(keep_alive_get(&mut conn, "/"), "got 0");
}

#[test]
fn static_files_with_caching_ranges_and_no_way_out() {
    let root = std::env::temp_dir().join(format!("netscript-http-static-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let public = root.join("public");
    std::fs::create_dir_all(public.join("sub")).expect("dirs");
    std::fs::write(public.join("hello.txt"), "0123456789").expect("write");
    std::fs::write(public.join("style.css"), "b{}").expect("write");
    std::fs::write(public.join("sub/index.html"), "<p>index</p>").expect("write");
    std::fs::write(root.join("secret.txt"), "SECRET").expect("write");
    std::os::unix::fs::symlink(root.join("secret.txt"), public.join("link.txt")).expect("symlink");
    let p = server(&format!(
        r#"let r = http::router(); r.static_dir("/static", {:?});
let s = http::listen("127.0.0.1", 0).serve(r); print(s.url); s.wait();"#,
        public.display().to_string()
    ));
    let (status, head, body) = curl_i(&[&url(&p, "/static/hello.txt")]);
    assert_eq!((status, body.as_str()), (200, "0123456789"));
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert!(curl_i(&[&url(&p, "/static/style.css")]).1.contains("content-type: text/css"));
    assert_eq!(curl_i(&[&url(&p, "/static/sub/")]).2, "<p>index</p>");
    assert!(head.contains("etag: ") && head.contains("last-modified: "), "{head}");
    let raw_head = curl(&["-I", &url(&p, "/static/hello.txt")]);
    let field =
        |name: &str| raw_head.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).expect("header");
    let (etag, modified) = (field("etag: "), field("last-modified: "));
    assert_eq!(curl_i(&["-H", &format!("If-None-Match: {etag}"), &url(&p, "/static/hello.txt")]).0, 304);
    assert_eq!(curl_i(&["-H", &format!("If-Modified-Since: {modified}"), &url(&p, "/static/hello.txt")]).0, 304);
    assert_eq!(
        curl_i(&["-H", "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT", &url(&p, "/static/hello.txt")]).0,
        200
    );
    let (status, head, body) = curl_i(&["-r", "2-4", &url(&p, "/static/hello.txt")]);
    assert_eq!((status, body.as_str()), (206, "234"));
    assert!(head.contains("content-range: bytes 2-4/10"), "{head}");
    assert_eq!(curl_i(&["-r", "20-30", &url(&p, "/static/hello.txt")]).0, 416);

    for attack in [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/sub/..%2f..%2fsecret.txt",
        "/static/link.txt",
        "/static/hello.txt%00.png",
        "/static/..%5csecret.txt",
    ] {
        let (status, _, body) = curl_i(&["--path-as-is", &url(&p, attack)]);
        assert!(matches!(status, 400 | 404), "{attack}: {status}");
        assert!(!body.contains("SECRET"), "{attack}: {body}");
    }
    let reply = raw(&p, b"GET /static/../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(!reply.contains("SECRET") && reply.starts_with("HTTP/1.1 404"), "{reply}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn guestbook_with_requests_session_cookies_and_redirects() {
    let p = Peer::netscript(&["run", "scripts/guestbook.rhai", "0"]);
    let out = python(&format!(
        r#"
import requests
base = "http://127.0.0.1:{}/"
s = requests.Session()
r = s.get(base)
print(r.status_code, 'name="name"' in r.text)
r = s.post(base, data={{"name": "", "message": "kept <text>"}})
print(r.status_code, 'id="name" class="error"' in r.text, 'class="error"' in r.text.split('id="message"')[1][:20], 'value="kept &lt;text&gt;"' in r.text)
r = s.post(base, data={{"name": "Ann", "message": "Hello & bye"}})
print(r.status_code, [h.status_code for h in r.history], r.url == base, "Thank you for signing!" in r.text, "<b>Ann</b>: Hello &amp; bye" in r.text)
r = s.get(base)
print("Thank you" in r.text, "flash" in s.cookies)
"#,
        p.port
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["200 True", "400 True False True", "200 [303] True True True", "False False"], "{out}");
}

#[test]
fn mock_api_serves_json_with_path_params() {
    let p = Peer::netscript(&["run", "scripts/mock_api.rhai", "0"]);
    let out = python(&format!(
        r#"
import requests
base = "http://127.0.0.1:{}"
r = requests.post(base + "/items", json={{"name": "disk"}})
print(r.status_code, r.json(), r.headers["Location"])
print(requests.get(base + "/items/1").json(), requests.get(base + "/items/9").status_code)
print(requests.put(base + "/items/1", json={{"name": "tape"}}).json())
print(requests.get(base + "/items").json())
print(requests.delete(base + "/items/1").status_code, requests.delete(base + "/items/1").status_code)
print(requests.get(base + "/echo?a=1&a=2", headers={{"X-Y": "z"}}).json()["query"])
print(requests.get(base + "/status/418").status_code)
"#,
        p.port
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "201 {'id': 1, 'name': 'disk'} /items/1",
            "{'id': 1, 'name': 'disk'} 404",
            "{'id': 1, 'name': 'tape'}",
            "[{'id': 1, 'name': 'tape'}]",
            "204 404",
            "{'a': ['1', '2']}",
            "418",
        ],
        "{out}"
    );
}

#[test]
fn a_thousand_connections_dropping_mid_request_cost_only_themselves() {
    let p = server(
        r#"let s = http::listen("127.0.0.1", 0, #{header_timeout: 2}).serve(|req| `ok ${req.path}`);
print(s.url); s.wait();"#,
    );
    let out = python(&format!(
        r#"
import socket, threading, http.client
port = {}
good = []
def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for i in range(200):
        c.request("GET", f"/n{{i}}")
        r = c.getresponse()
        good.append(r.status == 200 and r.read() == f"ok /n{{i}}".encode())
t = threading.Thread(target=client); t.start()
junk = [b"GET /", b"GET / HTTP/1.1\r\nHost: x\r\n", b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc", b""]
for i in range(1000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(junk[i % len(junk)])
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
t.join()
print(len(good), all(good))
"#,
        p.port
    ));
    assert_eq!(out.trim(), "200 True");
}

#[test]
fn stop_is_graceful_and_wait_returns() {
    let (child, first) = crate::util::netscript_first_line(&[
        "run",
        "-e",
        r#"let ch = task::channel(1);
let s = http::listen("127.0.0.1", 0).serve(|req| {
    if req.path == "/stop" { ch.send(1); return "stopping" }
    task::sleep(0.5); "slow done"
});
task::start(|| { ch.recv(); s.stop() });
print(s.url); s.wait(); print("stopped");"#,
    ]);
    let base = first.trim().to_string();
    let slow = std::thread::spawn({
        let base = base.clone();
        move || curl(&[&format!("{base}/slow")])
    });
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(curl(&[&format!("{base}/stop")]), "stopping");
    assert_eq!(slow.join().expect("slow client"), "slow done");
    let out = child.wait_with_output().expect("exit");
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped"));
    assert!(out.status.success());
}

#[test]
fn trace_and_access_log_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netscript"))
        .args([
            "run",
            "--trace",
            "-e",
            r#"let s = http::listen("127.0.0.1", 0, #{log: true}).serve(|req| "hi");
print(s.url); task::start(|| { task::sleep(1.5); s.stop() }); s.wait();"#,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("netscript starts");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")), &mut line)
        .expect("url");
    assert_eq!(curl(&[&format!("{}/x?y=1", line.trim())]), "hi");
    let out = child.wait_with_output().expect("exit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("> GET /x?y=1 HTTP/1.1") && err.contains("> user-agent: curl"), "{err}");
    assert!(err.contains("< HTTP/1.1 200 OK") && err.contains("< content-type: text/html"), "{err}");
    assert!(err.contains("127.0.0.1 - - [") && err.contains("] \"GET /x?y=1 HTTP/1.1\" 200 2"), "{err}");
}

/// One request on a kept-alive connection; the body of the answer.
fn keep_alive_get(conn: &mut std::io::BufReader<TcpStream>, path: &str) -> String {
    use std::io::BufRead;
    conn.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).expect("send");
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

const RELOADABLE: &str = r#"
fn page(req) { "v1 " + req.path }
let r = http::router();
r.get("/*rest", Fn("page"));
let s = http::listen("127.0.0.1", 0).serve(r);
print(`listening ${s.port}`);
s.wait();
"#;

#[test]
fn watch_swaps_handlers_under_a_running_server_and_its_keep_alive_connections() {
    use crate::watch::{Watch, save, scratch};
    let dir = scratch("http");
    let file = dir.join("app.rhai");
    std::fs::write(&file, RELOADABLE).expect("write");
    let w = Watch::start(&file);
    let port: u16 = w.expect("listening ").trim().trim_start_matches("listening ").parse().expect("port");
    let mut conn = std::io::BufReader::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    assert_eq!(keep_alive_get(&mut conn, "/a"), "v1 /a");
    save(&file, &RELOADABLE.replace("\"v1 \"", "\"v2 \""));
    w.expect("reloaded");
    // The same connection and port, the new code.
    assert_eq!(keep_alive_get(&mut conn, "/b"), "v2 /b");
    assert_eq!(curl(&[&format!("http://127.0.0.1:{port}/c")]), "v2 /c");
}

/// Headless Chromium through Selenium: an invalid guestbook post shows the
/// marked fields with the typed value kept; a valid one lands, after the
/// 303, on the GET page showing the entry, and going back does not post again.
#[test]
fn browser_signs_the_guestbook() {
    let p = Peer::netscript(&["run", "scripts/guestbook.rhai", "0"]);
    let Some(out) = crate::util::chromium(
        "browser_signs_the_guestbook",
        &format!(
            r##"base = "http://127.0.0.1:{port}/"
d.get(base)
d.find_element(By.ID, "message").send_keys("no name given")
d.find_element(By.ID, "send").click()
# A click does not wait for the page it submits: wait for the answer.
WebDriverWait(d, 10).until(lambda d: d.find_elements(By.ID, "name-problem"))
print("error" in d.find_element(By.ID, "name").get_attribute("class"),
      d.find_element(By.ID, "message").get_attribute("value"),
      len(d.find_elements(By.ID, "name-problem")))
d.find_element(By.ID, "name").send_keys("Ann")
d.find_element(By.ID, "send").click()
WebDriverWait(d, 10).until(lambda d: d.find_elements(By.ID, "flash"))
print(d.current_url == base, d.find_element(By.ID, "flash").text,
      d.find_element(By.ID, "entries").text)
d.refresh()
d.back()
d.get(base)
print(len(d.find_elements(By.CSS_SELECTOR, "#entries li")))"##,
            port = p.port
        ),
    ) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["True no name given 1", "True Thank you for signing! Ann: no name given", "1"], "{out}");
}

#[test]
fn https_with_http1_and_http2_by_alpn() {
    let dir = std::env::temp_dir().join(format!("netscript-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=CA:FALSE"])
        .current_dir(&dir)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (cert, key) = (dir.join("cert.pem").display().to_string(), dir.join("key.pem").display().to_string());
    let p = server(&format!(
        r#"let s = http::listen("127.0.0.1", 0, #{{tls: #{{cert: {cert:?}, key: {key:?}}}}})
    .serve(|req| `${{req.url}} ${{req.version}}`);
print(s.url); s.wait();"#
    ));
    let base = format!("https://127.0.0.1:{}/x", p.port);
    assert_eq!(curl(&["--cacert", &cert, "--http1.1", &base]), format!("{base} HTTP/1.1"));
    assert_eq!(curl(&["--cacert", &cert, "--http2", &base]), format!("{base} HTTP/2.0"));
    let out = python(&format!("import requests; print(requests.get({base:?}, verify={cert:?}).text)"));
    assert_eq!(out.trim(), format!("{base} HTTP/1.1"));
    // A client that does not trust the certificate fails its handshake; the server goes on.
    assert_eq!(curl(&[&base]), "");
    assert_eq!(curl(&["--cacert", &cert, &base]), format!("{base} HTTP/2.0"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every failure a script can meet is an error with a kind and the
/// operation's name: bad arguments and options, a taken port, and bodies
/// that do not decode (caught inside the handler, whose answer lists them).
#[test]
fn script_visible_failures_have_kinds_and_name_the_operation() {
    let out = crate::util::eval(
        r#"
fn failure(f) { try { f.call(); return "no error"; } catch (e) { return `${e.kind} ${e.op}`; } }
let s = http::listen("127.0.0.1", 0).serve(|req| {
    `${failure(|| req.json())},${failure(|| req.form())},${failure(|| req.text())}`
});
let got = [
    failure(|| http::listen("127.0.0.1", s.port)),
    failure(|| http::listen("127.0.0.1", 0, #{max_bdy: 1})),
    failure(|| http::listen("127.0.0.1", 0, #{max_body: -1})),
    failure(|| http::listen("127.0.0.1", 0, #{tls: 1})),
    failure(|| http::listen("127.0.0.1", 70000)),
    failure(|| http::response(1000, "")),
    failure(|| http::redirect("/", 200)),
    failure(|| http::response(200, "x").set_header("Bad Name", "v")),
    failure(|| http::response(200, "x").set_cookie("a;b", "v")),
    failure(|| http::response(200, "x").set_cookie("a", "v", #{samesite: "sometimes"})),
    failure(|| http::router().get("no-slash", |req| 1)),
    failure(|| http::router().route("BAD METHOD", "/", |req| 1)),
    failure(|| http::router().static_dir("/s", "/nonexistent/netscript")),
];
let c = tcp::connect("127.0.0.1", s.port, #{timeout: 10});
let body = blob(3, 0xff);
c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 3\r\n\r\n");
c.send(body);
let reply = c.recv_all().as_string();
got.push(reply.split("\r\n\r\n")[1]);
s.stop();
s.wait();
got
"#,
    )
    .expect("the script runs");
    let got: Vec<String> = out.into_array().expect("an array").iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "addr_in_use http::listen",
            "value http::listen",
            "value http::listen",
            "value http::listen",
            "value http::listen",
            "value http::response",
            "value http::redirect",
            "value resp.set_header",
            "value resp.set_cookie",
            "value resp.set_cookie",
            "value r.get",
            "value r.route",
            "io r.static_dir",
            "decode req.json,decode req.form,decode req.text",
        ]
    );
}

/// `keep_alive: false` answers one request per connection; `idle_timeout`
/// closes a connection that stays silent; `stop()` closes an idle
/// keep-alive connection at once, so `wait()` returns while its client
/// still holds it open.
#[test]
fn keep_alive_off_idle_timeout_and_stop_close_connections() {
    let p = server(
        r#"let s = http::listen("127.0.0.1", 0, #{keep_alive: false}).serve(|req| "one");
print(s.url); s.wait();"#,
    );
    let mut conn = std::io::BufReader::new(TcpStream::connect(("127.0.0.1", p.port)).expect("connect"));
    conn.get_mut().set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    assert_eq!(keep_alive_get(&mut conn, "/"), "one");
    let mut rest = Vec::new();
    assert_eq!(conn.read_to_end(&mut rest).expect("EOF, not a timeout"), 0);

    let p = server(
        r#"let s = http::listen("127.0.0.1", 0, #{idle_timeout: 0.3}).serve(|req| "idle");
print(s.url); s.wait();"#,
    );
    let mut conn = std::io::BufReader::new(TcpStream::connect(("127.0.0.1", p.port)).expect("connect"));
    conn.get_mut().set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    assert_eq!(keep_alive_get(&mut conn, "/"), "idle");
    assert_eq!(conn.read_to_end(&mut rest).expect("EOF, not a timeout"), 0);

    let (child, first) = crate::util::netscript_first_line(&[
        "run",
        "-e",
        r#"let ch = task::channel(1);
let s = http::listen("127.0.0.1", 0).serve(|req| { if req.path == "/stop" { ch.send(1); } "bye" });
task::start(|| { ch.recv(); s.stop() });
print(s.url); s.wait(); print("stopped");"#,
    ]);
    let port: u16 = first.trim().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let mut idle = std::io::BufReader::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    idle.get_mut().set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    assert_eq!(keep_alive_get(&mut idle, "/"), "bye");
    assert_eq!(curl(&[&format!("http://127.0.0.1:{port}/stop")]), "bye");
    let out = child.wait_with_output().expect("exit");
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped"), "{out:?}");
    assert_eq!(idle.read_to_end(&mut rest).expect("EOF, not a timeout"), 0);
}

/// A streamed body larger than any queue reaches a slow client whole; a
/// client that goes away mid-stream makes the writer's `w.write` fail with
/// a catchable `closed` error, and the server goes on.
#[test]
fn streams_wait_for_slow_clients_and_see_gone_ones() {
    let p = server(
        r#"let gone = task::channel(1);
let r = http::router();
r.get("/big", |req| http::stream(|w| { for i in 0..1000 { w.write(blob(1000, 0x61 + i % 26)); } }));
r.get("/endless", |req| http::stream(|w| {
    try { loop { w.write(blob(4096, 0x7a)); } } catch (e) { gone.send(`${e.kind} ${e.op}`); }
}));
r.get("/gone", |req| gone.recv());
let s = http::listen("127.0.0.1", 0).serve(r);
print(s.url); s.wait();"#,
    );
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "--limit-rate", "1M", &url(&p, "/big")])
        .output()
        .expect("curl runs");
    assert_eq!(out.stdout.len(), 1_000_000);
    let expected: Vec<u8> = (0..1000u32).flat_map(|i| vec![b'a' + (i % 26) as u8; 1000]).collect();
    assert!(out.stdout == expected, "the streamed body differs");

    let mut s = TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
    s.write_all(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut some = [0; 10_000];
    s.read_exact(&mut some).expect("part of the stream");
    drop(s);
    assert_eq!(curl(&[&url(&p, "/gone")]), "closed w.write");
    assert_eq!(curl_i(&[&url(&p, "/big")]).0, 200);
}

/// HTTPS that asks for client certificates (`client_ca`): curl and
/// `requests` with a certificate from that CA are answered; curl without
/// one is refused in the handshake, and the server goes on.
#[test]
fn https_with_client_certificates() {
    let pki = crate::tls::pki();
    let (cert, key, ca) = (pki.path("leaf.pem"), pki.path("leaf.key"), pki.path("ca.pem"));
    let (ccert, ckey) = (pki.path("client.pem"), pki.path("client.key"));
    let p = server(&format!(
        r#"let s = http::listen("127.0.0.1", 0, #{{tls: #{{cert: {cert:?}, key: {key:?}, client_ca: {ca:?}}}}})
    .serve(|req| `hello ${{req.version}}`);
print(s.url); s.wait();"#
    ));
    let base = format!("https://localhost:{}/", p.port);
    let resolve = format!("localhost:{}:127.0.0.1", p.port);
    let with_cert = ["--resolve", &resolve, "--cacert", &ca, "--cert", &ccert, "--key", &ckey, &base];
    assert_eq!(curl(&with_cert), "hello HTTP/2.0");
    assert_eq!(curl(&["--resolve", &resolve, "--cacert", &ca, &base]), "");
    let out = python(&format!(
        "import requests; print(requests.get('https://127.0.0.1:{}/', verify={ca:?}, cert=({ccert:?}, {ckey:?})).text)",
        p.port
    ));
    assert_eq!(out.trim(), "hello HTTP/1.1");
    assert_eq!(curl(&with_cert), "hello HTTP/2.0");
}
