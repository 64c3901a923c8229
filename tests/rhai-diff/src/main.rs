//! Differential fuzzer of the patched Rhai in `vendor/rhai` against stock rhai 1.27.0.
//!
//! The same program is built twice: against stock rhai from crates.io (`rhai-diff`) and
//! against the patched copy (`rhai-diff-patched`, from `patched/Cargo.toml`). It generates
//! scripts from a seeded RNG (the same scripts in both builds), runs each under several
//! engine settings and prints one canonical line per (script, setting): what the script
//! printed, its result or error, and the number of operations counted (through
//! `on_progress`). `compare` runs both builds on the same scripts and, on a mismatch,
//! shrinks the smallest differing script line by line and prints it.
//!
//! ```text
//! rhai-diff run SEED COUNT            canonical lines of scripts SEED.. SEED+COUNT
//! rhai-diff script SEED               the script of one seed
//! rhai-diff file PATH                 canonical lines of a script file, every setting
//! rhai-diff stdin                     the same, for a script on standard input
//! rhai-diff compare OTHER SEED COUNT [FILE..]
//!                                     compare with the other build (its binary path) on
//!                                     the scripts of the seeds and the script files
//! ```

use rhai::{Dynamic, Engine, OptimizationLevel};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// splitmix64: a fixed, tiny generator, so that a seed names the same script in every
/// build and every version of this program's dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True once in `n` times.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The loose type of a variable, which the generator mostly respects (a few wrong types
/// are made on purpose, to compare errors too).
#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Str,
    Arr,
    Map,
    Blob,
    Fn,
    Any,
}

#[derive(Clone)]
struct VarInfo {
    name: String,
    ty: Ty,
    constant: bool,
}

/// A script generator: variables in scope (outer ones first), the loop depth and the
/// names of the loop counters (kept unassigned, so that every loop ends).
struct Gen {
    rng: Rng,
    vars: Vec<VarInfo>,
    out: String,
    indent: usize,
    loops: usize,
    counters: usize,
    locals: usize,
    budget: usize,
}

impl Gen {
    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn var_of(&mut self, ty: Ty) -> Option<String> {
        let found: Vec<_> = self.vars.iter().filter(|v| v.ty == ty).map(|v| v.name.clone()).collect();
        (!found.is_empty()).then(|| found[self.rng.below(found.len())].clone())
    }

    fn mutable_var_of(&mut self, ty: Ty) -> Option<String> {
        let found: Vec<_> = self.vars.iter().filter(|v| v.ty == ty && !v.constant).map(|v| v.name.clone()).collect();
        (!found.is_empty()).then(|| found[self.rng.below(found.len())].clone())
    }

    fn any_var(&mut self) -> String {
        let k = self.rng.below(self.vars.len());
        self.vars[k].name.clone()
    }

    /// A small integer expression with a side effect on an outer integer (or a closure
    /// call that has one), for arguments and indexes.
    fn side_effect(&mut self) -> String {
        let target = self.mutable_var_of(Ty::Int);
        match (self.rng.below(4), target) {
            (0, Some(t)) => format!("{{ {t} += 1; {t} % 3 }}"),
            (1, _) if self.var_of(Ty::Fn).is_some() => {
                let f = self.var_of(Ty::Fn).unwrap();
                format!("{f}.call({})", self.rng.below(3))
            }
            (2, _) if self.var_of(Ty::Str).is_some() => {
                let s = self.mutable_var_of(Ty::Str).unwrap_or_else(|| "\"xy\"".into());
                format!("{s}.len() % 2")
            }
            (_, Some(t)) => format!("{{ {t} = {t} * 2 % 7; 1 }}"),
            _ => format!("{}", self.rng.below(3)),
        }
    }

    fn expr(&mut self, ty: Ty, depth: usize) -> String {
        if self.budget == 0 {
            return self.leaf(ty);
        }
        self.budget -= 1;
        // A wrong type now and then.
        let ty = if self.rng.one_in(150) { [Ty::Int, Ty::Str, Ty::Arr, Ty::Map][self.rng.below(4)] } else { ty };
        if depth == 0 || self.rng.one_in(3) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        match ty {
            Ty::Int | Ty::Any => match self.rng.below(22) {
                0..=4 => {
                    let op = self.rng.pick(&["+", "-", "*", "&", "|", "^", "+", "-", "% 3 +"]);
                    format!("({} {op} {})", self.expr(Ty::Int, d), self.expr(Ty::Int, d))
                }
                5 => {
                    let op = self.rng.pick(&["==", "!=", "<", ">=", "<="]);
                    format!(
                        "(if {} {op} {} {{ {} }} else {{ {} }})",
                        self.expr(Ty::Int, d),
                        self.expr(Ty::Int, d),
                        self.expr(Ty::Int, d),
                        self.expr(Ty::Int, d)
                    )
                }
                6 => match self.var_of(Ty::Arr) {
                    Some(a) => format!("{a}.len()"),
                    None => "0".into(),
                },
                7 => match self.var_of(Ty::Arr) {
                    Some(a) => format!("{a}[{} % ({a}.len() + 1) - 1]", self.expr(Ty::Int, d)),
                    None => "1".into(),
                },
                8 => match self.var_of(Ty::Arr) {
                    // `var.method(args)[index]`, with side effects in both.
                    // The index is read after the arguments, which may change it.
                    Some(a) => match (self.rng.below(3), self.mutable_var_of(Ty::Int)) {
                        (0, Some(k)) => format!("{a}.extract({{ {k} = ({k} + 1) % 2; 0 }})[{k}]"),
                        (1, _) => format!("{a}.extract({})[{}]", self.side_effect(), self.side_effect()),
                        _ => format!("{a}.extract({})[{}]", self.side_effect(), self.rng.below(2)),
                    },
                    None => "2".into(),
                },
                9 => match self.var_of(Ty::Map) {
                    Some(m) => format!("{m}.{}", self.rng.pick(&["a", "b", "c"])),
                    None => "3".into(),
                },
                10 => match self.var_of(Ty::Map) {
                    Some(m) => {
                        let key = self.expr(Ty::Str, d);
                        format!("{m}.get({key}) ?? {}", self.expr(Ty::Int, d))
                    }
                    None => "4".into(),
                },
                11 => match self.var_of(Ty::Str) {
                    Some(s) => format!("{s}.len()"),
                    None => "5".into(),
                },
                12 => match self.var_of(Ty::Blob) {
                    Some(b) => format!("{b}.len() + {b}[{} % 2 - 1]", self.expr(Ty::Int, d)),
                    None => "6".into(),
                },
                13 => match self.var_of(Ty::Fn) {
                    Some(f) => format!("{f}.call({})", self.expr(Ty::Int, d)),
                    None => "7".into(),
                },
                14 => format!("twice({})", self.expr(Ty::Int, d)),
                15 => format!("{{ {} }}", self.expr(Ty::Int, d)),
                16 => {
                    let e = self.expr(Ty::Int, d);
                    format!(
                        "(switch {e} {{ 0 => 10, 1 | 2 => {}, _ => {} }})",
                        self.expr(Ty::Int, d),
                        self.expr(Ty::Int, d)
                    )
                }
                17 => format!("(-{})", self.expr(Ty::Int, d)),
                18 => match self.var_of(Ty::Arr) {
                    Some(a) => format!("{a}.index_of({})", self.expr(Ty::Int, d)),
                    None => "8".into(),
                },
                19 => match self.var_of(Ty::Map) {
                    // `m.get(s.pop().to_string())[s]`: the index is read after the argument.
                    Some(m) => match self.mutable_var_of(Ty::Str) {
                        Some(s) if self.rng.one_in(2) => format!("{m}.get({s}.pop().to_string())[{s}] ?? 0"),
                        _ => format!("{m}.get({})[{}] ?? 0", self.side_effect_str(), self.expr(Ty::Str, d)),
                    },
                    None => "9".into(),
                },
                20 => format!("[{}, {}][{}]", self.expr(Ty::Int, d), self.expr(Ty::Int, d), self.rng.below(3)),
                _ => format!("bump({})", self.expr(Ty::Int, d)),
            },
            Ty::Str => match self.rng.below(6) {
                0 => format!("{} + {}", self.expr(Ty::Str, d), self.expr(Ty::Str, d)),
                1 => format!("`v${{{}}}`", self.expr(Ty::Int, d)),
                2 => format!("{}.to_string()", self.expr(Ty::Int, d)),
                3 => match self.var_of(Ty::Str) {
                    Some(s) => format!("{s}.sub_string(0, {})", self.expr(Ty::Int, d)),
                    None => "\"q\"".into(),
                },
                4 => format!("\"k\" + {}", self.expr(Ty::Int, d)),
                _ => self.leaf(Ty::Str),
            },
            Ty::Arr => match self.rng.below(4) {
                0 => format!("[{}, {}]", self.expr(Ty::Int, d), self.expr(Ty::Any, d)),
                1 => match self.var_of(Ty::Arr) {
                    Some(a) => format!("{a} + [{}]", self.expr(Ty::Int, d)),
                    None => "[]".into(),
                },
                2 => match self.var_of(Ty::Arr) {
                    Some(a) => format!("{a}.map(|x| x + {})", self.expr(Ty::Int, d)),
                    None => "[1]".into(),
                },
                _ => self.leaf(Ty::Arr),
            },
            Ty::Map => format!("#{{ a: {}, b: {} }}", self.expr(Ty::Int, d), self.expr(Ty::Any, d)),
            Ty::Blob => format!("blob({}, {})", self.rng.below(4), self.expr(Ty::Int, d)),
            Ty::Fn => self.leaf(Ty::Fn),
        }
    }

    /// A string expression with a side effect, for arguments.
    fn side_effect_str(&mut self) -> String {
        match self.mutable_var_of(Ty::Str) {
            Some(s) if self.rng.one_in(2) => format!("{s}.pop().to_string()"),
            Some(s) => format!("{{ {s} += \"a\"; \"a\" }}"),
            None => "\"a\"".into(),
        }
    }

    fn leaf(&mut self, ty: Ty) -> String {
        if !self.rng.one_in(3) {
            if let Some(v) = self.var_of(ty) {
                return v;
            }
        }
        match ty {
            Ty::Int | Ty::Any => format!("{}", self.rng.below(12)),
            Ty::Str => self.rng.pick(&["\"a\"", "\"ab\"", "\"b\"", "\"\"", "\"xyz\""]).into(),
            Ty::Arr => self.rng.pick(&["[]", "[1, 2]", "[3]", "[1, \"a\", [2]]"]).into(),
            Ty::Map => self.rng.pick(&["#{}", "#{a: 1}", "#{a: 1, b: 2}"]).into(),
            Ty::Blob => "blob(2)".into(),
            Ty::Fn => "|x| x + 1".into(),
        }
    }

    fn ty(&mut self) -> Ty {
        [Ty::Int, Ty::Int, Ty::Int, Ty::Str, Ty::Arr, Ty::Map, Ty::Blob, Ty::Any][self.rng.below(8)]
    }

    /// A new local name, or (sometimes) the name of a visible variable, shadowing it.
    fn local_name(&mut self) -> String {
        if self.rng.one_in(4) {
            return self.any_var();
        }
        self.locals += 1;
        format!("x{}", self.locals % 5)
    }

    fn declare(&mut self, name: String, ty: Ty, constant: bool) {
        self.vars.push(VarInfo { name, ty, constant });
    }

    fn block(&mut self, n: usize) {
        let visible = self.vars.len();
        self.indent += 1;
        for _ in 0..n {
            self.stmt();
        }
        self.indent -= 1;
        self.vars.truncate(visible);
    }

    fn stmt(&mut self) {
        if self.budget == 0 {
            self.line("print(0);");
            return;
        }
        self.budget -= 1;
        let d = 2;
        match self.rng.below(30) {
            0..=3 => {
                let ty = self.ty();
                let value = self.expr(ty, d);
                let name = self.local_name();
                let constant = self.rng.one_in(6);
                self.line(&format!("{} {name} = {value};", if constant { "const" } else { "let" }));
                self.declare(name, ty, constant);
            }
            4..=7 => {
                let value = self.expr(Ty::Any, d);
                self.line(&format!("print({value});"));
            }
            8..=9 => match self.mutable_var_of(Ty::Int) {
                Some(v) => {
                    let op = self.rng.pick(&["=", "+=", "-=", "*=", "="]);
                    let value = self.expr(Ty::Int, d);
                    self.line(&format!("{v} {op} {value};"));
                }
                None => self.line("print(1);"),
            },
            10 => {
                // A type change between iterations.
                let v = self.any_var();
                if self.vars.iter().any(|x| x.name == v && !x.constant) {
                    let value = self.expr(Ty::Str, d);
                    let other = self.expr(Ty::Int, d);
                    self.line(&format!("if {v}.type_of() == \"i64\" {{ {v} = {value}; }} else {{ {v} = {other}; }}"));
                    for x in self.vars.iter_mut().filter(|x| x.name == v) {
                        x.ty = Ty::Any;
                    }
                }
            }
            11..=12 => match self.mutable_var_of(Ty::Arr) {
                Some(a) => {
                    let value = self.expr(Ty::Any, d);
                    match self.rng.below(5) {
                        0 => self.line(&format!("{a}.push({value});")),
                        1 => self.line(&format!("{a}.pop();")),
                        2 => {
                            let i = self.side_effect();
                            self.line(&format!("if {a}.len() > 0 {{ {a}[{i}] = {value}; }}"));
                        }
                        3 => {
                            let i = self.side_effect();
                            self.line(&format!("{a}.insert({i}, {value});"));
                        }
                        _ => self.line(&format!("{a} += [{value}];")),
                    }
                }
                None => self.line("print(2);"),
            },
            13 => match self.mutable_var_of(Ty::Map) {
                Some(m) => {
                    let value = self.expr(Ty::Any, d);
                    let key = self.rng.pick(&["a", "b", "c"]);
                    match self.rng.below(3) {
                        0 => self.line(&format!("{m}.{key} = {value};")),
                        1 => self.line(&format!("{m}[\"{key}\"] = {value};")),
                        _ => self.line(&format!("{m}.remove(\"{key}\");")),
                    }
                }
                None => self.line("print(3);"),
            },
            14 => match self.mutable_var_of(Ty::Str) {
                Some(s) => {
                    let value = self.expr(Ty::Str, d);
                    match self.rng.below(3) {
                        0 => self.line(&format!("{s} += {value};")),
                        1 => self.line(&format!("{s}.pop();")),
                        _ => self.line(&format!("{s}.append({value});")),
                    }
                }
                None => self.line("print(4);"),
            },
            15 => match self.mutable_var_of(Ty::Blob) {
                Some(b) => {
                    let value = self.expr(Ty::Int, d);
                    match self.rng.below(3) {
                        0 => self.line(&format!("{b}.push({value});")),
                        1 => self.line(&format!("{b}[0] = {value};")),
                        _ => {
                            let n = self.rng.below(3);
                            self.line(&format!("{b}.truncate({n});"));
                        }
                    }
                }
                None => self.line("print(5);"),
            },
            16..=17 => {
                let cond = format!(
                    "{} {} {}",
                    self.expr(Ty::Int, 1),
                    self.rng.pick(&["<", ">", "==", "!="]),
                    self.expr(Ty::Int, 1)
                );
                self.line(&format!("if {cond} {{"));
                let n = 1 + self.rng.below(2);
                self.block(n);
                if self.rng.one_in(2) {
                    self.line("} else {");
                    let n = 1 + self.rng.below(2);
                    self.block(n);
                }
                self.line("}");
            }
            18..=19 if self.loops > 0 => {
                let cond =
                    format!("{} {} {}", self.expr(Ty::Int, 1), self.rng.pick(&["<", ">", "=="]), self.rng.below(8));
                let what = match self.rng.below(8) {
                    0 => "return 99;".to_string(),
                    1 => format!("throw {};", self.expr(Ty::Any, 1)),
                    2 | 3 => "continue;".to_string(),
                    _ => "break;".to_string(),
                };
                self.line(&format!("if {cond} {{ {what} }}"));
            }
            20..=21 if self.loops < 3 => self.looping(),
            22 => {
                let e = self.expr(Ty::Int, 1);
                self.line(&format!("switch {e} {{"));
                self.indent += 1;
                let a = self.expr(Ty::Any, 1);
                self.line(&format!("0 => print({a}),"));
                let b = self.expr(Ty::Int, 1);
                let t = self.mutable_var_of(Ty::Int).unwrap_or_else(|| "_dummy".into());
                if t == "_dummy" {
                    self.line(&format!("1 | 2 => print({b}),"));
                } else {
                    self.line(&format!("1 | 2 => {{ {t} += {b}; }}"));
                }
                self.line("_ => ()");
                self.indent -= 1;
                self.line("}");
            }
            23 => {
                self.line("try {");
                let n = 1 + self.rng.below(3);
                self.block(n);
                self.line("} catch (err) {");
                self.indent += 1;
                self.line("print(err);");
                self.indent -= 1;
                self.line("}");
            }
            24 => {
                // A closure made in the loop, capturing a local or an outer variable.
                let v = self.var_of(Ty::Int).unwrap_or_else(|| "1".into());
                let name = self.local_name();
                self.line(&format!("let {name} = |y| y + {v};"));
                self.declare(name.clone(), Ty::Fn, false);
                if let Some(fs) = self.mutable_var_of(Ty::Arr) {
                    if self.rng.one_in(2) {
                        self.line(&format!("{fs}.push({name});"));
                    }
                }
            }
            25 => match self.var_of(Ty::Fn) {
                Some(f) => {
                    let arg = self.expr(Ty::Int, 1);
                    self.line(&format!("print({f}.call({arg}));"));
                }
                None => self.line("print(6);"),
            },
            26 => {
                let a = self.expr(Ty::Int, d);
                self.line(&format!("bump({a});"));
            }
            27 => {
                let v = self.any_var();
                self.line(&format!("print({v});"));
            }
            _ => {
                let e = self.expr(Ty::Int, d);
                self.line(&format!("{e};"));
            }
        }
    }

    fn looping(&mut self) {
        let c = format!("i{}", self.counters);
        self.counters += 1;
        let n = 2 + self.rng.below(3);
        self.loops += 1;
        let body = 2 + self.rng.below(4);
        match self.rng.below(5) {
            0 | 1 => {
                self.line(&format!("for {c} in 0..{n} {{"));
                self.declare(c, Ty::Int, true);
                self.block(body);
                self.vars.pop();
                self.line("}");
            }
            2 => {
                match self.var_of(Ty::Arr) {
                    Some(a) => self.line(&format!("for ({c}, j{c}) in {a} {{")),
                    None => self.line(&format!("for ({c}, j{c}) in [1, 2, 3] {{")),
                }
                self.declare(c, Ty::Any, true);
                self.block(body);
                self.vars.pop();
                self.line("}");
            }
            3 => {
                self.line(&format!("let {c} = 0;"));
                self.line(&format!("while {c} < {n} {{"));
                self.indent += 1;
                self.line(&format!("{c} += 1;"));
                self.indent -= 1;
                self.declare(c.clone(), Ty::Int, true);
                self.block(body);
                self.line("}");
            }
            _ => {
                self.line(&format!("let {c} = 0;"));
                let form = self.rng.below(2);
                self.line(if form == 0 { "loop {" } else { "do {" });
                self.indent += 1;
                self.line(&format!("{c} += 1;"));
                if form == 0 {
                    self.line(&format!("if {c} > {n} {{ break; }}"));
                }
                self.indent -= 1;
                self.declare(c.clone(), Ty::Int, true);
                self.block(body);
                if form == 0 {
                    self.line("}");
                } else {
                    self.line(&format!("}} while {c} < {n};"));
                }
            }
        }
        self.loops -= 1;
    }
}

/// The script of one seed.
fn script(seed: u64) -> String {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5851_F42D),
        vars: Vec::new(),
        out: String::new(),
        indent: 0,
        loops: 0,
        counters: 0,
        locals: 0,
        budget: 60,
    };
    g.line("fn twice(x) { x * 2 }");
    g.line("fn bump(x) { x + 1 }");
    let outer: &[(&str, &str, Ty)] = &[
        ("a", "1", Ty::Int),
        ("b", "10", Ty::Int),
        ("k", "0", Ty::Int),
        ("s", "\"ab\"", Ty::Str),
        ("arr", "[10, 20, 30]", Ty::Arr),
        ("m", "#{ a: #{ a: 1, ab: 2 }, b: #{ a: 3, ab: 4 }, ab: 5 }", Ty::Map),
        ("bl", "blob(3, 7)", Ty::Blob),
    ];
    for &(name, init, ty) in outer {
        if name == "a" || !g.rng.one_in(4) {
            g.line(&format!("let {name} = {init};"));
            g.declare(name.into(), ty, false);
        }
    }
    if g.rng.one_in(2) {
        // A closure sharing an outer variable with the loop.
        let v = g.var_of(Ty::Int).unwrap();
        g.line(&format!("let h = |x| {{ {v} += x; {v} % 3 }};"));
        g.declare("h".into(), Ty::Fn, false);
    }
    let loops = 1 + g.rng.below(2);
    for _ in 0..loops {
        g.looping();
    }
    let names: Vec<_> = g.vars.iter().map(|v| v.name.clone()).collect();
    g.line(&format!("[{}]", names.join(", ")));
    g.out
}

/// The engine settings every script runs under.
const SETTINGS: &[&str] = &[
    "default",
    "opt-none",
    "opt-full",
    "fast-ops-off",
    "strict-vars",
    "max-ops-300",
    "max-ops-2000",
    "max-vars-8",
    "max-vars-11",
    "max-call-levels-2",
    "max-string-8",
    "max-array-4",
    "max-map-2",
    "max-expr-depth-8",
    // Without a progress callback (no operation count printed): the limit alone.
    "max-ops-300-no-progress",
    "max-ops-2000-no-progress",
];

fn engine(setting: &str, printed: &Arc<Mutex<Vec<String>>>, ops: &Arc<Mutex<u64>>) -> Engine {
    let mut engine = Engine::new();
    // Bounds every run (the generated loops end, but nested ones multiply, and a string or
    // an array appended to itself doubles).
    engine.set_max_operations(200_000);
    engine.set_max_string_size(10_000);
    engine.set_max_array_size(1_000);
    engine.set_max_map_size(1_000);
    let progress = !setting.ends_with("-no-progress");
    match setting.trim_end_matches("-no-progress") {
        "default" => (),
        "opt-none" => {
            engine.set_optimization_level(OptimizationLevel::None);
        }
        "opt-full" => {
            engine.set_optimization_level(OptimizationLevel::Full);
        }
        "fast-ops-off" => {
            engine.set_fast_operators(false);
        }
        "strict-vars" => {
            engine.set_strict_variables(true);
        }
        "max-ops-300" => {
            engine.set_max_operations(300);
        }
        "max-ops-2000" => {
            engine.set_max_operations(2000);
        }
        "max-vars-8" => {
            engine.set_max_variables(8);
        }
        "max-vars-11" => {
            engine.set_max_variables(11);
        }
        "max-call-levels-2" => {
            engine.set_max_call_levels(2);
        }
        "max-string-8" => {
            engine.set_max_string_size(8);
        }
        "max-array-4" => {
            engine.set_max_array_size(4);
        }
        "max-map-2" => {
            engine.set_max_map_size(2);
        }
        "max-expr-depth-8" => {
            engine.set_max_expr_depths(8, 8);
        }
        other => panic!("unknown setting {other}"),
    }
    let p = printed.clone();
    engine.on_print(move |s| p.lock().unwrap().push(s.to_string()));
    let p = printed.clone();
    engine.on_debug(move |s, _, _| p.lock().unwrap().push(format!("debug:{s}")));
    if progress {
        let o = ops.clone();
        engine.on_progress(move |n| {
            *o.lock().unwrap() = n;
            None
        });
    }
    engine
}

/// The canonical result of `script` under `setting`, on one line.
fn run_one(script: &str, setting: &str) -> String {
    let printed = Arc::new(Mutex::new(Vec::new()));
    let ops = Arc::new(Mutex::new(0));
    let engine = engine(setting, &printed, &ops);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match engine.eval::<Dynamic>(script) {
        Ok(value) => format!("ok {value:?}"),
        Err(err) => format!("err {err}"),
    }))
    .unwrap_or_else(|_| "PANIC".to_string());
    let printed = printed.lock().unwrap().join("|");
    let ops = *ops.lock().unwrap();
    canonical(&format!("out [{printed}] {result} ops {ops}"))
}

/// `line` on one line, with the names of anonymous functions left out (hashes with a
/// random seed per process, as Rhai's default `ahash/runtime-rng` feature makes them).
fn canonical(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(k) = rest.find("anon$") {
        out.push_str(&rest[..k + 5]);
        rest = rest[k + 5..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out.replace('\n', "\\n")
}

/// Canonical lines of `script` under every setting, named by `case`.
fn run_all(case: &str, script: &str, out: &mut impl Write) {
    for setting in SETTINGS {
        writeln!(out, "{case} {setting} {}", run_one(script, setting)).unwrap();
    }
}

/// The other build's canonical lines for a script.
fn other_lines(other: &str, script: &str) -> Vec<String> {
    let mut child = Command::new(other)
        .arg("stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the other build runs");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

fn own_lines(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    run_all("stdin", script, &mut out);
    String::from_utf8(out).unwrap().lines().map(String::from).collect()
}

/// Remove lines of `script` while the two builds still differ on it.
fn shrink(other: &str, script: &str) -> String {
    let differs = |s: &str| own_lines(s) != other_lines(other, s);
    let mut lines: Vec<String> = script.lines().map(String::from).collect();
    let mut chunk = lines.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < lines.len() {
            let mut candidate = lines.clone();
            candidate.drain(start..(start + chunk).min(lines.len()));
            if differs(&candidate.join("\n")) {
                lines = candidate;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    lines.join("\n")
}

/// Compare this build with `other` on the scripts of `seed..seed + count` and on `files`;
/// false (after printing the smallest differing script, shrunk) if they differ anywhere.
fn compare(other: &str, seed: u64, count: u64, files: &[String]) -> bool {
    let mut differing: Vec<String> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("a script file");
        if own_lines(&text) != other_lines(other, &text) {
            differing.push(text);
        }
    }
    if !files.is_empty() {
        println!("rhai-diff: {} script files x {} settings: {} differ", files.len(), SETTINGS.len(), differing.len());
    }
    let child = Command::new(other)
        .args(["run", &seed.to_string(), &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the other build runs");
    let theirs = child.wait_with_output().unwrap();
    let theirs = String::from_utf8_lossy(&theirs.stdout);
    let mut ours = Vec::new();
    for s in seed..seed + count {
        run_all(&s.to_string(), &script(s), &mut ours);
    }
    let ours = String::from_utf8(ours).unwrap();
    let mut seeds: Vec<u64> = Vec::new();
    let mut by_setting = std::collections::BTreeMap::<String, usize>::new();
    let (mut lines, mut panics) = (0, 0);
    for (a, b) in ours.lines().zip(theirs.lines()) {
        lines += 1;
        panics += usize::from(b.contains(" PANIC ops"));
        if a != b {
            let mut words = a.split(' ');
            let case: u64 = words.next().unwrap().parse().unwrap();
            *by_setting.entry(words.next().unwrap().to_string()).or_default() += 1;
            if seeds.last() != Some(&case) {
                seeds.push(case);
            }
        }
    }
    let expected = (count as usize) * SETTINGS.len();
    if lines != expected || theirs.lines().count() != expected {
        println!("rhai-diff: the other build printed {} of {expected} lines", theirs.lines().count());
        return false;
    }
    println!(
        "rhai-diff: {count} scripts x {} settings: {} scripts differ, {} lines, {panics} panics in the other build",
        SETTINGS.len(),
        seeds.len(),
        by_setting.values().sum::<usize>()
    );
    for (setting, n) in &by_setting {
        println!("  {setting}: {n}");
    }
    differing.extend(seeds.iter().map(|&s| script(s)));
    let Some(smallest) = differing.iter().min_by_key(|s| s.len()) else {
        return true;
    };
    let small = shrink(other, smallest);
    println!("smallest differing script (shrunk):\n{small}\n");
    for (a, b) in own_lines(&small).iter().zip(other_lines(other, &small)) {
        if *a != b {
            println!("this build:  {a}\nother build: {b}");
        }
    }
    false
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: usize| args.get(k).map(String::as_str).unwrap_or_default();
    let num = |k: usize| arg(k).parse::<u64>().expect("a number");
    let stdout = &mut std::io::stdout().lock();
    match arg(1) {
        "run" => {
            for s in num(2)..num(2) + num(3) {
                run_all(&s.to_string(), &script(s), stdout);
            }
        }
        "script" => print!("{}", script(num(2))),
        "file" => run_all("file", &std::fs::read_to_string(arg(2)).expect("a script file"), stdout),
        "stdin" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).unwrap();
            run_all("stdin", &text, stdout);
        }
        "compare" => {
            if !compare(arg(2), num(3), num(4), &args[5.min(args.len())..]) {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: rhai-diff run SEED COUNT | script SEED | file PATH | stdin | compare OTHER SEED COUNT [FILE..]"
            );
            std::process::exit(2);
        }
    }
}
