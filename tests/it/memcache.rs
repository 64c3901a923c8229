//! `memcache::` against real memcached servers (Debian's `memcached`), with
//! libmemcached itself as the oracle of the ring: a small C program linked
//! to it (`memcache_oracle.c`), and pylibmc / pymemcache writing and reading
//! the same keys over three servers.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{cli, closed_port, eval, python};

/// A memcached process on a loopback port; killed when dropped.
struct Memcached {
    child: Option<Child>,
    port: u16,
}

impl Memcached {
    fn start() -> Self {
        Self::on(closed_port())
    }

    fn on(port: u16) -> Self {
        let mut cmd = Command::new("memcached");
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-m", "64", "-t", "1"]);
        // memcached refuses to run as root unless told which user to be.
        if is_root() {
            cmd.args(["-u", "root"]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("memcached starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "memcached did not listen on {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child: Some(child), port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kill the process (the port is free again afterwards).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn three() -> [Memcached; 3] {
    [Memcached::start(), Memcached::start(), Memcached::start()]
}

fn rhai_list(servers: &[&Memcached]) -> String {
    let items: Vec<String> = servers.iter().map(|m| format!("\"{}\"", m.addr())).collect();
    format!("[{}]", items.join(", "))
}

fn py_list(servers: &[&Memcached]) -> String {
    let items: Vec<String> = servers.iter().map(|m| format!("'{}'", m.addr())).collect();
    format!("[{}]", items.join(", "))
}

/// The oracle binary, compiled once against the system's libmemcached.
fn oracle() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("netscript-mc-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bin = dir.join("memcache_oracle");
        let flags = Command::new("pkg-config").args(["--cflags", "--libs", "libmemcached"]).output().expect("pkg-config");
        assert!(flags.status.success(), "libmemcached-dev is missing");
        let flags = String::from_utf8(flags.stdout).expect("utf-8");
        let src = crate::util::repo_root().join("tests/it/memcache_oracle.c");
        let status = Command::new("cc")
            .arg(&src)
            .arg("-o")
            .arg(&bin)
            .args(flags.split_whitespace())
            .status()
            .expect("cc runs");
        assert!(status.success(), "the oracle does not compile");
        bin
    })
}

/// libmemcached's server for each key.
fn oracle_pick(distribution: &str, hash: &str, weighted: bool, servers: &str, keys: &[String]) -> Vec<String> {
    use std::io::Write;
    let mut child = Command::new(oracle())
        .args([distribution, hash, if weighted { "1" } else { "0" }, servers])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("oracle runs");
    let mut input = keys.join("\n");
    input.push('\n');
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("keys written");
    let out = child.wait_with_output().expect("oracle output");
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect()
}

/// Keys of many shapes, with non-ASCII bytes (libhashkit sign-extends them).
fn sample_keys(n: usize) -> Vec<String> {
    let shapes = ["user:{}", "k{}", "session-{}-é", "ключ{}", "{}", "a/b/c/{}:x", "ÿ{}ÿ"];
    (0..n).map(|i| shapes[i % shapes.len()].replace("{}", &(i * 7919 % 100_003).to_string())).collect()
}

/// netscript's server for each key with client options `opts` (a Rhai map).
fn netscript_pick(servers: &str, opts: &str, keys: &[String]) -> Vec<String> {
    let list: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    let v = eval(&format!(
        "let mc = memcache::client({servers}, {opts}); let out = []; \
         for k in [{}] {{ out.push(mc.server_for(k)); }} out",
        list.join(", ")
    ))
    .unwrap();
    v.into_array().unwrap().into_iter().map(|s| s.into_string().unwrap()).collect()
}

#[test]
fn the_ring_is_libmemcacheds_for_every_distribution_and_hash() {
    let keys = sample_keys(700);
    // Points of a server on port 11211 leave the port out of their text.
    let plain = "10.0.0.1:11211,10.0.0.2:11212,10.0.0.3:11213,10.0.0.4:11211";
    let plain_rhai = r#"["10.0.0.1:11211", "10.0.0.2:11212", "10.0.0.3:11213", "10.0.0.4"]"#;
    let weighted = "10.0.1.1:11211 600,10.0.1.2:11211 300,10.0.1.3:11211 200,10.0.1.4:11211 350,\
                    10.0.1.5:11211 1000,10.0.1.6:11211 800,10.0.1.7:11211 950,10.0.1.8:11211 100";
    let weighted_rhai = "[#{host: \"10.0.1.1\", weight: 600}, #{host: \"10.0.1.2\", weight: 300}, \
        #{host: \"10.0.1.3\", weight: 200}, #{host: \"10.0.1.4\", weight: 350}, \
        #{host: \"10.0.1.5\", weight: 1000}, #{host: \"10.0.1.6\", weight: 800}, \
        #{host: \"10.0.1.7\", weight: 950}, #{host: \"10.0.1.8\", weight: 100}]";
    let cases: &[(&str, &str, bool, &str, &str, &str)] = &[
        ("ketama", "default", false, plain, plain_rhai, "#{}"),
        ("ketama", "md5", false, plain, plain_rhai, "#{hash: \"md5\"}"),
        ("ketama", "crc", false, plain, plain_rhai, "#{hash: \"crc\"}"),
        ("ketama", "fnv1_64", false, plain, plain_rhai, "#{hash: \"fnv1_64\"}"),
        ("ketama", "fnv1a_64", false, plain, plain_rhai, "#{hash: \"fnv1a_64\"}"),
        ("ketama", "fnv1_32", false, plain, plain_rhai, "#{hash: \"fnv1_32\"}"),
        ("ketama", "fnv1a_32", false, plain, plain_rhai, "#{hash: \"fnv1a_32\"}"),
        ("modula", "default", false, plain, plain_rhai, "#{distribution: \"modula\"}"),
        ("modula", "crc", false, plain, plain_rhai, "#{distribution: \"modula\", hash: \"crc\"}"),
        ("ketama", "default", true, plain, plain_rhai, "#{weighted: true}"),
        // Weights above 1 turn weighted points on, with the key hash left as is…
        ("ketama", "default", false, weighted, weighted_rhai, "#{}"),
        // …and `ketama_weighted` also switches the key hash to md5.
        ("ketama", "default", true, weighted, weighted_rhai, "#{weighted: true}"),
        ("ketama", "fnv1a_32", true, weighted, weighted_rhai, "#{weighted: true, hash: \"fnv1a_32\"}"),
    ];
    for (dist, hash, weighted_flag, servers, rhai_servers, opts) in cases {
        let want = oracle_pick(dist, hash, *weighted_flag, servers, &keys);
        assert_eq!(want.len(), keys.len(), "oracle output for {dist}/{hash}");
        let got = netscript_pick(rhai_servers, opts, &keys);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(got[i], want[i], "{dist}/{hash}/weighted={weighted_flag}: key {key:?}");
        }
        // A ring that sends everything to one server would pass trivially.
        let distinct: std::collections::HashSet<&String> = got.iter().collect();
        assert!(distinct.len() > 2, "{dist}/{hash}: keys reach {} servers", distinct.len());
    }
}

#[test]
fn pylibmc_and_netscript_put_every_key_on_the_same_server() {
    let servers = three();
    let refs: Vec<&Memcached> = servers.iter().collect();
    let n = 300;
    // pylibmc writes; each server is then asked directly which keys it holds.
    let placed = python(&format!(
        "import pylibmc, pymemcache.client.base as b\n\
         mc = pylibmc.Client({list}, behaviors={{'ketama': True}})\n\
         for i in range({n}): mc.set('py:%d' % i, b'v%d' % i)\n\
         for addr in {list}:\n\
         \x20   h, p = addr.split(':'); c = b.Client((h, int(p)))\n\
         \x20   print(addr, ' '.join(str(i) for i in range({n}) if c.get('py:%d' % i) is not None))\n",
        list = py_list(&refs)
    ));
    let script = format!(
        "let mc = memcache::client({list}); let out = []; \
         for i in 0..{n} {{ out.push(mc.server_for(`py:${{i}}`) + \"=\" + mc.get(`py:${{i}}`)); }} \
         for i in 0..{n} {{ mc.set(`ns:${{i}}`, `w${{i}}`); }} out",
        list = rhai_list(&refs)
    );
    let got = eval(&script).unwrap().into_array().unwrap();
    let mut spread = Vec::new();
    for line in placed.lines() {
        let (addr, ids) = line.split_once(' ').unwrap_or((line, ""));
        let ids: Vec<usize> = ids.split_whitespace().map(|s| s.parse().unwrap()).collect();
        spread.push(ids.len());
        for i in ids {
            assert_eq!(got[i].to_string(), format!("{addr}=v{i}"), "py:{i}");
        }
    }
    assert_eq!(spread.iter().sum::<usize>(), n, "every key on exactly one server: {spread:?}");
    assert!(spread.iter().all(|&c| c > n / 10), "keys spread over all three: {spread:?}");
    // The reverse: what netscript wrote, pylibmc reads, and each key sits
    // on the server pylibmc would ask.
    let read = python(&format!(
        "import pylibmc, pymemcache.client.base as b\n\
         mc = pylibmc.Client({list}, behaviors={{'ketama': True}})\n\
         got = mc.get_multi(['ns:%d' % i for i in range({n})])\n\
         ok = all(got.get('ns:%d' % i) == b'w%d' % i for i in range({n}))\n\
         direct = 0\n\
         for addr in {list}:\n\
         \x20   h, p = addr.split(':'); c = b.Client((h, int(p)))\n\
         \x20   direct += sum(1 for i in range({n}) if c.get('ns:%d' % i) is not None)\n\
         print(len(got), ok, direct)\n",
        list = py_list(&refs)
    ));
    assert_eq!(read.trim(), format!("{n} True {n}"));
}

#[test]
fn every_command_of_the_text_protocol() {
    let m = Memcached::start();
    let v = eval(&format!(
        r#"let mc = memcache::client(["{}"]);
           let r = [];
           r.push(mc.set("a", "1"));
           r.push(mc.get("a"));
           r.push(mc.add("a", "2"));
           r.push(mc.add("b", "2", 60));
           r.push(mc.replace("c", "3"));
           r.push(mc.replace("b", "22"));
           r.push(mc.append("b", "+"));
           r.push(mc.prepend("b", "-"));
           r.push(mc.get("b"));
           r.push(mc.append("nope", "x"));
           let item = mc.gets("b");
           r.push(mc.cas("b", "new", item.cas));
           r.push(mc.cas("b", "newer", item.cas));
           r.push(mc.get("b"));
           r.push(mc.incr("a"));
           r.push(mc.incr("a", 10));
           r.push(mc.decr("a", 100));
           r.push(mc.incr("missing"));
           r.push(mc.touch("a", 100));
           r.push(mc.touch("missing", 100));
           r.push(mc.delete("a"));
           r.push(mc.delete("a"));
           r.push(mc.get("a"));
           let bin = blob(256);
           for i in 0..256 {{ bin[i] = i; }}
           mc.set("bin", bin, #{{flags: 7, expire: 0}});
           r.push(mc.get("bin") == bin);
           r.push(mc.flags("bin"));
           r.push(type_of(mc.get("bin")));
           mc.set("crlf", "a\r\nEND\r\nb");
           r.push(mc.get("crlf"));
           r.push(mc.get_multi(["b", "crlf", "zzz"]).len());
           let s = mc.stats();
           r.push(s.values()[0].curr_items != ());
           r.push(mc.version().values()[0].len() > 0);
           mc.flush_all();
           r.push(mc.get("b"));
           r"#,
        m.addr()
    ))
    .unwrap();
    assert_eq!(
        v.to_string(),
        r#"[true, "1", false, true, false, true, true, true, "-22+", false, true, false, "new", 2, 12, 0, (), true, false, true, false, (), true, 7, "blob", "a\r\nEND\r\nb", 2, true, true, ()]"#
    );
}

#[test]
fn bad_keys_are_value_errors_and_never_reach_the_server() {
    let m = Memcached::start();
    let v = eval(&format!(
        r#"let mc = memcache::client(["{}"]);
           let kinds = [];
           for k in ["", "has space", "line\nbreak", "tab\there", "x".pad(251, "x"), "del" + "\x7f"] {{
               try {{ mc.set(k, "v"); kinds.push("sent"); }} catch (e) {{ kinds.push(e.kind); }}
           }}
           try {{ mc.get_multi(["ok", "not ok"]); }} catch (e) {{ kinds.push(e.kind); }}
           kinds.push(mc.set("x".pad(250, "x"), "longest"));
           kinds.push(mc.stats().values()[0].cmd_set);
           kinds"#,
        m.addr()
    ))
    .unwrap();
    assert_eq!(v.to_string(), r#"["value", "value", "value", "value", "value", "value", "value", true, "1"]"#);
}

#[test]
fn get_multi_reads_many_keys_from_all_servers_at_once() {
    let servers = three();
    let refs: Vec<&Memcached> = servers.iter().collect();
    let v = eval(&format!(
        r#"let mc = memcache::client({});
           let keys = [];
           for i in 0..1000 {{ keys.push(`m:${{i}}`); if i % 3 != 0 {{ mc.set(`m:${{i}}`, `value ${{i}}`); }} }}
           let got = mc.get_multi(keys);
           let wrong = 0;
           for i in 0..1000 {{
               let v = got[`m:${{i}}`];
               if (i % 3 == 0 && v != ()) || (i % 3 != 0 && v != `value ${{i}}`) {{ wrong += 1; }}
           }}
           let per = [];
           for s in mc.stats().values() {{ per.push(parse_int(s.cmd_get)); }}
           [got.len(), wrong, per]"#,
        rhai_list(&refs)
    ))
    .unwrap();
    let v = v.into_array().unwrap();
    assert_eq!(v[0].as_int().unwrap(), 666);
    assert_eq!(v[1].as_int().unwrap(), 0);
    // Each server saw the keys asked of it as gets: 1,000 in all.
    let per: Vec<i64> = v[2].clone().into_array().unwrap().iter().map(|x| x.as_int().unwrap()).collect();
    assert_eq!(per.iter().sum::<i64>(), 1000, "{per:?}");
    assert!(per.iter().all(|&c| c > 100), "{per:?}");
}

/// A script that reads `keys` in a loop for `secs` seconds and counts, per
/// server the key lived on at the start, hits, misses and errors by kind.
fn reader_script(servers: &str, opts: &str, secs: f64) -> String {
    format!(
        r#"let mc = memcache::client({servers}, {opts});
           let home = #{{}};
           for i in 0..200 {{ mc.set(`d:${{i}}`, `v${{i}}`); home[`d:${{i}}`] = mc.server_for(`d:${{i}}`); }}
           print("ready");
           let counts = #{{}};
           let start = timestamp();
           while start.elapsed < {secs} {{
               for i in 0..200 {{
                   let k = `d:${{i}}`;
                   let what = try {{ if mc.get(k) == `v${{i}}` {{ "hit" }} else {{ "miss" }} }} catch (e) {{ e.kind }};
                   let tag = home[k] + " " + what;
                   counts[tag] = (counts[tag] ?? 0) + 1;
               }}
               task::sleep(0.01);
           }}
           counts"#
    )
}

fn counts_of(v: rhai::Dynamic) -> std::collections::BTreeMap<String, i64> {
    v.cast::<rhai::Map>().into_iter().map(|(k, v)| (k.to_string(), v.as_int().unwrap())).collect()
}

#[test]
fn a_killed_server_fails_only_its_own_keys() {
    let mut servers = three();
    let list = rhai_list(&servers.iter().collect::<Vec<_>>());
    let victim = servers[1].addr();
    let script = reader_script(&list, "#{timeout: 1}", 1.5);
    let reader = std::thread::spawn(move || eval(&script));
    std::thread::sleep(Duration::from_millis(500));
    servers[1].kill();
    let counts = counts_of(reader.join().unwrap().unwrap());
    for (tag, n) in &counts {
        let (home, what) = tag.split_once(' ').unwrap();
        if home == victim {
            assert!(what == "hit" || what == "refused" || what == "closed" || what == "reset", "{tag}: {n}");
        } else {
            assert_eq!(what, "hit", "{tag}: {n} (other servers keep working)");
        }
    }
    assert!(counts.get(&format!("{victim} refused")).is_some_and(|&n| n > 0), "{counts:?}");
    assert!(counts.get(&format!("{victim} hit")).is_some_and(|&n| n > 0), "{counts:?}");
}

#[test]
fn remove_failed_takes_a_dead_server_off_the_ring_and_retries_it() {
    let mut servers = three();
    let list = rhai_list(&servers.iter().collect::<Vec<_>>());
    let victim_port = servers[1].port;
    let victim = servers[1].addr();
    let script = reader_script(&list, "#{timeout: 1, remove_failed: 2, retry_timeout: 30}", 1.5);
    let reader = std::thread::spawn(move || eval(&script));
    std::thread::sleep(Duration::from_millis(500));
    servers[1].kill();
    let counts = counts_of(reader.join().unwrap().unwrap());
    // Two failures, then the victim's keys move to the others (as misses).
    let refused = counts.get(&format!("{victim} refused")).copied().unwrap_or(0);
    assert_eq!(refused, 2, "{counts:?}");
    assert!(counts.get(&format!("{victim} miss")).is_some_and(|&n| n > 0), "{counts:?}");
    for (tag, n) in &counts {
        if !tag.starts_with(&victim) {
            assert!(tag.ends_with(" hit"), "{tag}: {n}");
        }
    }
    // After retry_timeout the server is tried again and, when back, serves its keys.
    let restarted = Memcached::on(victim_port);
    let v = eval(&format!(
        r#"let mc = memcache::client({list}, #{{timeout: 1, remove_failed: 1, retry_timeout: 0.3}});
           let keys = [];
           for i in 0..300 {{ let k = `r:${{i}}`; if mc.server_for(k) == "{victim}" {{ keys.push(k); }} }}
           let k = keys[0];
           mc.server_for(k);
           let first = try {{ mc.get(k); "ok" }} catch (e) {{ e.kind }};
           let moved = mc.server_for(k);
           task::sleep(0.5);
           let back = mc.server_for(k);
           mc.set(k, "again");
           [keys.len() > 0, first, moved != "{victim}", back, mc.get(k)]"#
    ))
    .unwrap();
    assert_eq!(v.to_string(), format!(r#"[true, "ok", false, "{victim}", "again"]"#));
    drop(restarted);
}

#[test]
fn a_server_that_is_down_from_the_start_is_refused_then_removed() {
    let live = Memcached::start();
    let dead = format!("127.0.0.1:{}", closed_port());
    let v = eval(&format!(
        r#"let mc = memcache::client(["{}", "{dead}"], #{{remove_failed: 1, retry_timeout: 60}});
           let k = "";
           for i in 0..100 {{ if mc.server_for(`x${{i}}`) == "{dead}" {{ k = `x${{i}}`; break; }} }}
           let first = try {{ mc.set(k, "v"); "stored" }} catch (e) {{ e.kind + " " + e.message }};
           [first, mc.server_for(k), mc.set(k, "v"), mc.get(k)]"#,
        live.addr()
    ))
    .unwrap()
    .into_array()
    .unwrap();
    let first = v[0].to_string();
    assert!(first.starts_with(&format!("refused set {dead}")), "{first}");
    assert_eq!(v[1].to_string(), live.addr());
    assert_eq!(v[2].to_string(), "true");
    assert_eq!(v[3].to_string(), "v");
}

#[test]
fn a_hostile_server_gets_errors_not_a_crash() {
    // Replies that break the protocol: an absurd length, an endless line,
    // a value without its terminator, garbage.
    let replies = [
        ("b'VALUE k 0 99999999999999\\r\\n'", "decode"),
        ("b'x' * 100000", "decode"),
        ("b'VALUE k 0 3\\r\\nabcdefgh'", "decode"),
        ("b'\\xff\\xfe garbage\\r\\n'", "decode"),
        ("b''", "closed"),
    ];
    for (reply, kind) in replies {
        let peer = crate::util::Peer::start(&format!(
            "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(5)\nprint(s.getsockname()[1])\n\
             while True:\n    c, _ = s.accept()\n    c.recv(4096)\n    c.sendall({reply})\n    c.close()"
        ));
        let err = eval(&format!(r#"memcache::client(["127.0.0.1:{}"], #{{timeout: 2}}).get("k")"#, peer.port))
            .unwrap_err();
        assert!(err.starts_with(&format!("{kind}: get 127.0.0.1:{}", peer.port)), "{reply}: {err}");
    }
}

#[test]
fn a_silent_server_times_out_within_the_call_timeout() {
    let peer = crate::util::Peer::start(
        "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(5)\nprint(s.getsockname()[1])\n\
         c, _ = s.accept()\ntime.sleep(30)",
    );
    let err = eval(&format!(r#"memcache::client(["127.0.0.1:{}"], #{{timeout: 0.3}}).get("k")"#, peer.port))
        .unwrap_err();
    assert!(err.starts_with("timeout: get 127.0.0.1:"), "{err}");
}

#[test]
fn connecting_needs_the_hosts_permission() {
    let m = Memcached::start();
    let (code, _, err) =
        cli(&["run", "--allow-net", "example.org", "-e", &format!(r#"memcache::client(["{}"])"#, m.addr())]);
    assert_ne!(code, 0);
    assert!(err.contains("permission"), "{err}");
}

#[test]
fn the_words_example_caches_dictionary_lookups() {
    let servers = three();
    let args: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let mut cmd = vec!["run", "scripts/memcache_words.rhai"];
    cmd.extend(args.iter().map(String::as_str));
    let (code, out, err) = cli(&cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    // Two passes over the same words: the second one hits every time.
    assert!(out.contains("pass 1:"), "{out}");
    assert!(out.contains("pass 2: 100.0% hits"), "{out}");
    for addr in &args {
        assert!(out.contains(addr.as_str()), "{out}");
    }
}
