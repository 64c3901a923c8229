//! `memcache::` against real memcached servers (Debian's `memcached`), with
//! pylibmc (libmemcached) as the oracle of the ring — asked where each key
//! goes for many server lists and options, and writing and reading the
//! same keys as netscript over three live servers — and pymemcache asking
//! each server directly what it holds.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{cli, closed_port, eval, python};

/// A memcached process on a loopback port; killed when dropped.
pub(crate) struct Memcached {
    child: Option<Child>,
    port: u16,
}

impl Memcached {
    pub(crate) fn start() -> Self {
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

    pub(crate) fn addr(&self) -> String {
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

/// The server pylibmc picks for each key (`Client.hash` is libmemcached's
/// `memcached_generate_hash`: the index of the key's server). `servers` are
/// pylibmc specs (`host:port:weight`); `behaviors` is a Python dict given
/// to the constructor and `then` one set afterwards (libmemcached applies
/// behaviours in order: `ketama_weighted` resets the hash to md5, so an
/// explicit hash after it needs a second call).
fn pylibmc_pick(behaviors: &str, then: &str, servers: &[&str], keys: &[String]) -> Vec<String> {
    use std::io::Write;
    let code = format!(
        "import pylibmc, sys\n\
         servers = {servers:?}\n\
         mc = pylibmc.Client(servers, behaviors={behaviors})\n\
         mc.behaviors = {then}\n\
         labels = []\n\
         for s in servers:\n\
         \x20   host, _, port = s[1:].partition(']') if s.startswith('[') else s.partition(':')\n\
         \x20   port = port.lstrip(':').split(':')[0] or '11211'\n\
         \x20   labels.append(('[%s]:%s' if ':' in host else '%s:%s') % (host, port))\n\
         for line in sys.stdin:\n\
         \x20   print(labels[mc.hash(bytes.fromhex(line.strip()))])\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input: String = keys.iter().map(|k| format!("{}\n", hex(k.as_bytes()))).collect();
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("keys written");
    let out = child.wait_with_output().expect("pylibmc output");
    assert!(out.status.success(), "pylibmc failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
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

/// A server list as `(host, port, weight)`, port `None` for "left out".
type List = &'static [(&'static str, Option<u16>, u32)];

/// pylibmc's spec of each server.
fn pylibmc_specs(list: List) -> Vec<String> {
    list.iter()
        .map(|&(host, port, weight)| {
            let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
            match (port, weight) {
                (None, 1) => host,
                (Some(p), 1) => format!("{host}:{p}"),
                (p, w) => format!("{host}:{}:{w}", p.unwrap_or(11211)),
            }
        })
        .collect()
}

/// The same list as a script writes it: strings, or maps where weighted.
fn rhai_servers(list: List) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|&(host, port, weight)| match (port, weight) {
            (None, 1) if host.contains(':') => format!("\"[{host}]\""),
            (None, 1) => format!("\"{host}\""),
            (Some(p), 1) if host.contains(':') => format!("\"[{host}]:{p}\""),
            (Some(p), 1) => format!("\"{host}:{p}\""),
            (p, w) => format!("#{{host: \"{host}\", port: {}, weight: {w}}}", p.unwrap_or(11211)),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn every_key_goes_where_pylibmc_sends_it() {
    // Points of a server on port 11211 leave the port out of their text,
    // whether the port is written or not; IPv6 hosts are hashed bare.
    const MIXED: List = &[
        ("10.0.0.1", Some(11211), 1),
        ("10.0.0.2", Some(11212), 1),
        ("10.0.0.3", Some(11213), 1),
        ("10.0.0.4", None, 1),
    ];
    const V6: List = &[
        ("::1", Some(11212), 1),
        ("::2", None, 1),
        ("192.168.5.5", Some(11300), 1),
        ("10.9.9.9", Some(11211), 1),
        ("172.16.0.1", Some(20000), 1),
    ];
    const TWELVE: List = &[
        ("10.1.0.1", Some(11211), 1),
        ("10.1.0.2", Some(11212), 1),
        ("10.1.0.3", Some(11213), 1),
        ("10.1.0.4", Some(11211), 1),
        ("10.1.0.5", Some(11212), 1),
        ("10.1.0.6", Some(11213), 1),
        ("10.1.0.7", Some(11211), 1),
        ("10.1.0.8", Some(11212), 1),
        ("10.1.0.9", Some(11213), 1),
        ("10.1.0.10", Some(11211), 1),
        ("10.1.0.11", Some(11212), 1),
        ("10.1.0.12", Some(11213), 1),
    ];
    // libmemcached's own weighted fixture (tests/ketama_test_cases.h).
    const WEIGHTED: List = &[
        ("10.0.1.1", None, 600),
        ("10.0.1.2", None, 300),
        ("10.0.1.3", None, 200),
        ("10.0.1.4", None, 350),
        ("10.0.1.5", None, 1000),
        ("10.0.1.6", None, 800),
        ("10.0.1.7", None, 950),
        ("10.0.1.8", None, 100),
    ];
    const SMALL_WEIGHTS: List = &[("10.2.0.1", Some(11311), 3), ("10.2.0.2", Some(11312), 1), ("10.2.0.3", None, 2)];
    // (pylibmc behaviors, behaviors set afterwards, netscript options)
    let unweighted: &[(&str, &str, &str)] = &[
        ("{'ketama': True}", "{}", "#{}"),
        ("{'ketama': True, 'hash': 'md5'}", "{}", "#{hash: \"md5\"}"),
        ("{'ketama': True, 'hash': 'crc'}", "{}", "#{hash: \"crc\"}"),
        ("{'ketama': True, 'hash': 'fnv1_64'}", "{}", "#{hash: \"fnv1_64\"}"),
        ("{'ketama': True, 'hash': 'fnv1a_64'}", "{}", "#{hash: \"fnv1a_64\"}"),
        ("{'ketama': True, 'hash': 'fnv1_32'}", "{}", "#{hash: \"fnv1_32\"}"),
        ("{'ketama': True, 'hash': 'fnv1a_32'}", "{}", "#{hash: \"fnv1a_32\"}"),
        ("{}", "{}", "#{distribution: \"modula\"}"),
        ("{'hash': 'md5'}", "{}", "#{distribution: \"modula\", hash: \"md5\"}"),
        ("{'hash': 'crc'}", "{}", "#{distribution: \"modula\", hash: \"crc\"}"),
        ("{'hash': 'fnv1a_32'}", "{}", "#{distribution: \"modula\", hash: \"fnv1a_32\"}"),
        // `ketama_weighted` switches the key hash to md5, weights or not…
        ("{'ketama_weighted': True}", "{}", "#{weighted: true}"),
        // …unless a hash is set after it.
        ("{'ketama_weighted': True}", "{'hash': 'fnv1a_32'}", "#{weighted: true, hash: \"fnv1a_32\"}"),
    ];
    let weighted: &[(&str, &str, &str)] = &[
        // A weight above 1 turns weighted points on, the key hash left as is.
        ("{'ketama': True}", "{}", "#{}"),
        // (Not crc: its 15-bit hashes all fall before the first md5 point.)
        ("{'ketama': True, 'hash': 'fnv1_32'}", "{}", "#{hash: \"fnv1_32\"}"),
        ("{'ketama_weighted': True}", "{}", "#{weighted: true}"),
        ("{'ketama_weighted': True}", "{'hash': 'fnv1a_32'}", "#{weighted: true, hash: \"fnv1a_32\"}"),
        // Modula ignores weights.
        ("{}", "{}", "#{distribution: \"modula\"}"),
    ];
    let keys = sample_keys(700);
    let mut checked = 0;
    let runs = [MIXED, V6, TWELVE].into_iter().flat_map(|l| unweighted.iter().map(move |c| (l, c)));
    let runs = runs.chain([WEIGHTED, SMALL_WEIGHTS].into_iter().flat_map(|l| weighted.iter().map(move |c| (l, c))));
    for (list, (behaviors, then, opts)) in runs {
        let specs = pylibmc_specs(list);
        let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let want = pylibmc_pick(behaviors, then, &specs, &keys);
        assert_eq!(want.len(), keys.len(), "pylibmc's answers for {behaviors} {then} over {specs:?}");
        let got = netscript_pick(&rhai_servers(list), opts, &keys);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(got[i], want[i], "{opts} (pylibmc {behaviors} {then}) over {specs:?}: key {key:?}");
        }
        // A ring that sends everything to one server would pass trivially.
        let distinct: std::collections::HashSet<&String> = got.iter().collect();
        assert!(distinct.len() == list.len(), "{opts} over {specs:?}: keys reach {} servers", distinct.len());
        checked += 1;
    }
    assert_eq!(checked, 3 * unweighted.len() + 2 * weighted.len());
    // One server: libmemcached skips hashing, every key is on it.
    let one = pylibmc_pick("{'ketama': True}", "{}", &["10.3.0.1:11500"], &keys);
    assert!(one.iter().all(|s| s == "10.3.0.1:11500"));
    assert_eq!(netscript_pick("[\"10.3.0.1:11500\"]", "#{}", &keys), one);
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
fn pylibmc_and_netscript_read_each_others_values_by_their_flags() {
    let m = Memcached::start();
    let addr = m.addr();
    // pylibmc stores str with flags 16, int with 4 (as text), bytes with 0.
    python(&format!(
        "import pylibmc\nmc = pylibmc.Client(['{addr}'])\n\
         mc.set('p:str', 'caf\\u00e9'); mc.set('p:int', 41); mc.set('p:bytes', b'\\xff\\x00raw')\n"
    ));
    let v = eval(&format!(
        r#"let mc = memcache::client(["{addr}"]);
           let r = [mc.get("p:str"), mc.flags("p:str"), mc.get("p:int"), mc.flags("p:int"), mc.incr("p:int"),
                    mc.get("p:bytes") == blob(1, 0xff) + blob(1, 0) + "raw".to_blob()];
           mc.set("n:str", "naïve", #{{flags: 16}});
           mc.set("n:int", 7, #{{flags: 4}});
           mc.set("n:bytes", "plain");
           r"#
    ))
    .unwrap();
    assert_eq!(v.to_string(), r#"["café", 16, "41", 4, 42, true]"#);
    let read = python(&format!(
        "import pylibmc\nmc = pylibmc.Client(['{addr}'])\n\
         print(repr(mc.get('n:str')), repr(mc.get('n:int')), repr(mc.get('n:bytes')), repr(mc.get('p:int')))\n"
    ));
    assert_eq!(read.trim(), "'naïve' 7 b'plain' 42");
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
           let longest = "";
           for i in 0..250 {{ longest += "x"; }}
           for k in ["", "has space", "line\nbreak", "tab\there", longest + "x", "del" + "\x7f"] {{
               try {{ mc.set(k, "v"); kinds.push("sent"); }} catch (e) {{ kinds.push(e.kind); }}
           }}
           try {{ mc.get_multi(["ok", "not ok"]); }} catch (e) {{ kinds.push(e.kind); }}
           kinds.push(mc.set(longest, "longest"));
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
                   let what = "";
                   try {{ what = if mc.get(k) == `v${{i}}` {{ "hit" }} else {{ "miss" }}; }} catch (e) {{ what = e.kind; }}
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
    let victim = servers[1].addr();
    let script = reader_script(&list, "#{timeout: 1, remove_failed: 2, retry_timeout: 30}", 1.5);
    let reader = std::thread::spawn(move || eval(&script));
    std::thread::sleep(Duration::from_millis(500));
    servers[1].kill();
    let counts = counts_of(reader.join().unwrap().unwrap());
    // Two failures (refused, or reset/closed when the kill lands mid-call),
    // then the victim's keys move to the others (as misses).
    let failures: i64 = ["refused", "reset", "closed"]
        .iter()
        .map(|kind| counts.get(&format!("{victim} {kind}")).copied().unwrap_or(0))
        .sum();
    assert_eq!(failures, 2, "{counts:?}");
    assert!(counts.get(&format!("{victim} miss")).is_some_and(|&n| n > 0), "{counts:?}");
    for (tag, n) in &counts {
        if !tag.starts_with(&victim) {
            assert!(tag.ends_with(" hit"), "{tag}: {n}");
        }
    }
}

#[test]
fn a_removed_server_rejoins_the_ring_after_retry_timeout() {
    let live = Memcached::start();
    let port = closed_port();
    let back = format!("127.0.0.1:{port}");
    // The server comes up while the script waits; the script polls for it.
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        Memcached::on(port)
    });
    let v = eval(&format!(
        r#"let mc = memcache::client(["{}", "{back}"], #{{timeout: 1, remove_failed: 1, retry_timeout: 2}});
           let k = "";
           for i in 0..100 {{ if mc.server_for(`r${{i}}`) == "{back}" {{ k = `r${{i}}`; break; }} }}
           let first = "ok";
           try {{ mc.get(k); }} catch (e) {{ first = e.kind; }}
           let moved = mc.server_for(k);
           let up = false;
           while !up {{ try {{ tcp::connect("127.0.0.1", {port}).close(); up = true; }} catch {{ task::sleep(0.05); }} }}
           let still_moved = mc.server_for(k);
           task::sleep(2.1);
           let returned = mc.server_for(k);
           mc.set(k, "again");
           [first, moved, still_moved, returned, mc.get(k), k]"#,
        live.addr()
    ))
    .unwrap()
    .into_array()
    .unwrap();
    let restarted = starter.join().unwrap();
    // Refused once, then off the ring until retry_timeout is over (even
    // though it is up again), then back with its keys.
    let got: Vec<String> = v[..5].iter().map(ToString::to_string).collect();
    assert_eq!(got, ["refused", &live.addr(), &live.addr(), &back, "again"]);
    let held =
        python(&format!("import pymemcache.client.base as b\nprint(b.Client(('127.0.0.1', {port})).get('{}'))", v[5]));
    assert_eq!(held.trim(), "b'again'");
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
           let first = "stored";
           try {{ mc.set(k, "v"); }} catch (e) {{ first = e.kind + " " + e.message; }}
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
        let err =
            eval(&format!(r#"memcache::client(["127.0.0.1:{}"], #{{timeout: 2}}).get("k")"#, peer.port)).unwrap_err();
        assert!(err.starts_with(&format!("{kind}: get 127.0.0.1:{}", peer.port)), "{reply}: {err}");
    }
}

#[test]
fn a_silent_server_times_out_within_the_call_timeout() {
    let peer = crate::util::Peer::start(
        "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(5)\nprint(s.getsockname()[1])\n\
         c, _ = s.accept()\ntime.sleep(30)",
    );
    let err =
        eval(&format!(r#"memcache::client(["127.0.0.1:{}"], #{{timeout: 0.3}}).get("k")"#, peer.port)).unwrap_err();
    assert!(err.starts_with("timeout: get 127.0.0.1:"), "{err}");
}

#[test]
fn a_silent_server_times_out_its_own_keys_and_get_multi_returns_the_rest() {
    let live = [Memcached::start(), Memcached::start()];
    let silent = crate::util::Peer::start(
        "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(50)\nprint(s.getsockname()[1])\n\
         held = []\nwhile True:\n    held.append(s.accept()[0])",
    );
    let quiet = format!("127.0.0.1:{}", silent.port);
    let v = eval(&format!(
        r#"let mc = memcache::client(["{}", "{quiet}", "{}"], #{{timeout: 0.3}});
           let keys = [];
           let quiet_keys = 0;
           let errors = #{{}};
           for i in 0..30 {{
               let k = `q:${{i}}`;
               keys.push(k);
               let home = mc.server_for(k);
               if home == "{quiet}" {{
                   quiet_keys += 1;
                   let e = "stored";
                   try {{ mc.set(k, "v"); }} catch (err) {{
                       e = if err.message.starts_with("set {quiet}") {{ err.kind }} else {{ err.message }};
                   }}
                   errors[e] = (errors[e] ?? 0) + 1;
               }} else {{
                   mc.set(k, `v${{i}}`);
               }}
           }}
           let got = mc.get_multi(keys);
           let right = 0;
           for k in got.keys() {{ if mc.server_for(k) != "{quiet}" && got[k] == "v" + k.sub_string(2) {{ right += 1; }} }}
           [quiet_keys, errors, got.len(), right]"#,
        live[0].addr(),
        live[1].addr()
    ))
    .unwrap()
    .into_array()
    .unwrap();
    let quiet_keys = v[0].as_int().unwrap();
    assert!(quiet_keys > 3, "{v:?}");
    // Each of the silent server's keys timed out; every other key was read.
    assert_eq!(v[1].to_string(), format!("#{{\"timeout\": {quiet_keys}}}"));
    assert_eq!(v[2].as_int().unwrap(), 30 - quiet_keys);
    assert_eq!(v[3].as_int().unwrap(), 30 - quiet_keys);
}

#[test]
fn get_multi_pipelines_its_get_lines_to_a_server() {
    // A server that answers only once it has all three `get` lines of 250
    // keys: a client that waited for one reply before sending the next line
    // would time out.
    let peer = crate::util::Peer::start(
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(5)\nprint(s.getsockname()[1])\n\
         while True:\n\
         \x20   c, _ = s.accept(); buf = b''\n\
         \x20   while buf.count(b'\\r\\n') < 3:\n\
         \x20       buf += c.recv(65536)\n\
         \x20   out = b''\n\
         \x20   for line in buf.split(b'\\r\\n')[:3]:\n\
         \x20       out += b''.join(b'VALUE %s 0 1\\r\\n!\\r\\n' % k for k in line.split()[1:]) + b'END\\r\\n'\n\
         \x20   c.sendall(out)\n",
    );
    let v = eval(&format!(
        r#"let mc = memcache::client(["127.0.0.1:{}"], #{{timeout: 3}});
           let keys = [];
           for i in 0..250 {{ keys.push(`p${{i}}`); }}
           let got = mc.get_multi(keys);
           [got.len(), got.p0, got.p249]"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), r#"[250, "!", "!"]"#);
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
    // Every 200th word of Debian's wamerican list: about 500 distinct words.
    let dict = std::fs::read_to_string("/usr/share/dict/words").expect("/usr/share/dict/words (wamerican)");
    let words: Vec<&str> = dict.lines().step_by(200).collect();
    assert!(words.len() > 400, "{} words", words.len());
    let list = args.join(",");
    let mut cmd = vec!["run", "scripts/memcache_words.rhai", &list];
    cmd.extend(&words);
    let (code, out, err) = cli(&cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    let n = words.len();
    // The first pass misses every word and stores it, the second hits.
    assert!(out.contains(&format!("pass 1: 0.0% hits (0 of {n})")), "{out}");
    assert!(out.contains(&format!("pass 2: 100.0% hits ({n} of {n})")), "{out}");
    // The printed spread is what each server really holds, and the ring
    // reaches all three.
    let mut total = 0;
    for m in &servers {
        let held = python(&format!(
            "import pymemcache.client.base as b\nprint(b.Client(('127.0.0.1', {})).stats()[b'curr_items'])",
            m.port
        ));
        let held: usize = held.trim().parse().unwrap();
        assert!(out.contains(&format!("  {}: {held} keys\n", m.addr())), "{}: {held} items\n{out}", m.addr());
        assert!(held > n / 10, "{}: {held} of {n}", m.addr());
        total += held;
    }
    assert_eq!(total, n);
}

#[test]
fn tasks_share_one_pipelined_connection_per_server_and_each_reply_reaches_its_caller() {
    let m = Memcached::start();
    let v = eval(&format!(
        r#"let mc = memcache::client(["{}"]);
           let opened = mc.stats().values()[0].total_connections.parse_int();
           fn work(mc, n) {{
               let wrong = 0;
               for i in 0..200 {{
                   let k = `t${{n}}:${{i}}`;
                   mc.set(k, `v${{n}}:${{i}}:${{i * i}}`);
                   if mc.get(k) != `v${{n}}:${{i}}:${{i * i}}` {{ wrong += 1; }}
                   if mc.incr(`count:${{n}}`) == () {{ mc.set(`count:${{n}}`, 1); }}
               }}
               wrong
           }}
           // Half of the tasks are cancelled mid-run: their replies, still
           // coming, must not reach anyone else.
           let tasks = [];
           for n in 0..50 {{ tasks.push(task::start(Fn("work"), [mc, n])); }}
           task::sleep(0.05);
           for n in range(0, 50, 2) {{ tasks[n].cancel(); }}
           let wrong = 0;
           for n in range(1, 50, 2) {{ wrong += tasks[n].join(); }}
           let counts = [];
           for n in range(1, 50, 2) {{ counts.push(mc.get(`count:${{n}}`)); }}
           let after = mc.stats().values()[0].total_connections.parse_int();
           [wrong, counts.filter(|c| c != "200").len(), after - opened, mc.get("t1:199")]"#,
        m.addr()
    ))
    .unwrap();
    // Every call read its own reply, and the 50 tasks opened no connection
    // beyond the one the first `stats` made.
    assert_eq!(v.to_string(), r#"[0, 0, 0, "v1:199:39601"]"#);
}

#[test]
fn a_call_that_times_out_on_a_shared_connection_lets_the_calls_behind_it_through() {
    // A server that never answers `get slow` on a connection (and so not the
    // requests after it there), and answers every other `get` at once.
    let peer = crate::util::Peer::start(
        "import socket, threading\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(50)\n\
         print(s.getsockname()[1])\n\
         def serve(c):\n\
         \x20   buf = b''\n\
         \x20   while True:\n\
         \x20       data = c.recv(65536)\n\
         \x20       if not data: return\n\
         \x20       buf += data\n\
         \x20       while b'\\r\\n' in buf:\n\
         \x20           line, buf = buf.split(b'\\r\\n', 1)\n\
         \x20           key = line.split()[1]\n\
         \x20           if key == b'slow':\n\
         \x20               threading.Event().wait()\n\
         \x20           c.sendall(b'VALUE %s 0 2\\r\\nok\\r\\nEND\\r\\n' % key)\n\
         while True:\n\
         \x20   c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()\n",
    );
    let v = eval(&format!(
        r#"let mc = memcache::client(["127.0.0.1:{}"], #{{timeout: 0.3}});
           let slow = task::start(|| {{ let r = "answered"; try {{ mc.get("slow"); }} catch (e) {{ r = e.kind; }} r }});
           task::sleep(0.05);
           // Queued behind `slow` on the same connection, with a longer timeout.
           mc.timeout = 3;
           let fast = task::start(|| mc.get("fast"));
           [slow.join(), fast.join(), mc.get("after")]"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), r#"["timeout", "ok", "ok"]"#);
}
