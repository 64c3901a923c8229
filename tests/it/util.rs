//! Shared helpers: evaluate a script, run the built binary, find peers.

#![allow(dead_code)]

use rhai::Dynamic;

/// Evaluate `code` as a script and return its value, or the error's text.
///
/// Errors come back as `"kind: message"` so tests can assert on the kind.
pub fn eval(code: &str) -> Result<Dynamic, String> {
    let mut engine = rhai::Engine::new();
    netscript_stdlib::register_all(&mut engine);
    engine.eval::<Dynamic>(code).map_err(|e| describe(&e))
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
