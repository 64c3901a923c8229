//! The reference is generated from the registered functions: every
//! script-visible function is documented, its examples compile, and the
//! committed `docs/reference.md` is what `netscript doc` prints now.

use netscript::docs;

#[test]
fn every_function_has_docs_and_every_callable_one_an_example() {
    let all = docs::stdlib();
    assert!(all.len() > 100, "only {} functions found", all.len());
    let undocumented: Vec<String> =
        all.iter().filter(|d| d.doc.trim().is_empty()).map(|d| format!("{:?}: {}", d.module, d.signature)).collect();
    assert!(undocumented.is_empty(), "functions without docs:\n{}", undocumented.join("\n"));
    let property =
        |d: &docs::FnDoc| d.name.starts_with("get$") || d.name.starts_with("set$") || d.name.starts_with("to_");
    let without: Vec<String> = all
        .iter()
        .filter(|d| !property(d) && d.examples().is_empty())
        .map(|d| format!("{:?}: {}", d.module, d.signature))
        .collect();
    assert!(without.is_empty(), "functions without a ```rhai example:\n{}", without.join("\n"));
}

#[test]
fn every_example_compiles() {
    let mut engine = netscript::rhai::Engine::new();
    netscript::stdlib::register_all(&mut engine);
    let mut broken = Vec::new();
    for d in docs::stdlib() {
        for ex in d.examples() {
            if let Err(e) = engine.compile(&ex) {
                broken.push(format!("{} ({:?}): {e}\n{ex}", d.display_name(), d.module));
            }
        }
    }
    assert!(broken.is_empty(), "examples that do not compile:\n{}", broken.join("\n"));
}

#[test]
fn committed_reference_is_up_to_date() {
    let path = crate::util::repo_root().join("docs/reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let fresh = docs::markdown(&docs::stdlib());
    assert!(committed == fresh, "docs/reference.md is stale: run `netscript doc > docs/reference.md`");
}
