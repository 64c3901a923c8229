//! The host's error type: a script failure with its kind, message and the
//! place in the source, rendered like a compiler diagnostic.

use std::fmt;

use rhai::{Dynamic, EvalAltResult, Map, ParseError, Position};

/// Why a run failed (boxed: it travels through many `Result`s).
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: String,
    message: String,
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    source_line: Option<String>,
    value: Dynamic,
}

impl Error {
    /// A host-level failure (unreadable file, host shut down).
    pub fn host(kind: &str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind: kind.into(),
            message: message.into(),
            file: None,
            line: None,
            column: None,
            source_line: None,
            value: Dynamic::UNIT,
        }))
    }

    /// A syntax error in `file`.
    pub(crate) fn parse(err: &ParseError, file: &str, source: &str) -> Self {
        let mut e = Self::host("syntax", err.err_type().to_string());
        e.locate(file, source, err.position());
        e
    }

    /// A runtime error raised while running `file`.
    pub(crate) fn runtime(err: &EvalAltResult, file: &str, source: &str) -> Self {
        let inner = netscript_stdlib::error::innermost(err);
        let (kind, mut message, value) = classify(inner);
        // Python reads module-level names inside functions; Rhai functions see
        // only their parameters, and top-level constants as `global::NAME`.
        if let (EvalAltResult::ErrorVariableNotFound(name, _), EvalAltResult::ErrorInFunctionCall(..)) = (inner, err) {
            let name = name.trim_start_matches("global::");
            message.push_str(&format!(
                " (a function sees only its parameters; a top-level `const {name}` is `global::{name}` inside it)"
            ));
        }
        let mut e =
            Self(Box::new(Inner { kind, message, file: None, line: None, column: None, source_line: None, value }));
        // The innermost position is where the failing call was made; errors
        // in other files (modules) keep that file's name.
        let (pos, src_name) = position_of(err);
        match src_name {
            Some(other) if other != file => {
                let text = std::fs::read_to_string(&other).unwrap_or_default();
                e.locate(&other, &text, pos);
            }
            _ => e.locate(file, source, pos),
        }
        e
    }

    /// Re-label a cancellation caused by the run's deadline.
    pub(crate) fn into_deadline(mut self, limit: std::time::Duration) -> Self {
        self.0.kind = "limit".into();
        self.0.message = format!("the run exceeded its deadline of {}", netscript_stdlib::runtime::seconds(limit));
        self
    }

    fn locate(&mut self, file: &str, source: &str, pos: Position) {
        self.0.file = Some(file.to_string());
        if let (Some(line), col) = (pos.line(), pos.position()) {
            self.0.line = Some(line);
            self.0.column = col;
            self.0.source_line = source.lines().nth(line - 1).map(ToString::to_string);
        }
    }

    /// The stable kind label (`refused`, `timeout`, `syntax`, `limit`…).
    #[must_use]
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The message, naming the operation and peer where there is one.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// `(line, column)` in the script, when known.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        self.0.line.map(|l| (l, self.0.column.unwrap_or(0)))
    }

    /// The value the script raised (the `#{kind, message, op, peer}` map for
    /// library errors, whatever `throw` was given otherwise).
    pub fn value(&self) -> &Dynamic {
        &self.0.value
    }

    /// `file:line:col: kind: message`, then the source line with a caret.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.0.file {
            out.push_str(file);
            if let Some(line) = self.0.line {
                out.push_str(&format!(":{line}:{}", self.0.column.unwrap_or(1)));
            }
            out.push_str(": ");
        }
        out.push_str(&format!("{}: {}", self.0.kind, self.0.message));
        if let (Some(src), Some(line)) = (&self.0.source_line, self.0.line) {
            let gutter = format!("{line} | ");
            out.push_str(&format!(
                "\n{gutter}{src}\n{}^",
                " ".repeat(gutter.len() + self.0.column.unwrap_or(1).saturating_sub(1))
            ));
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Error {}

/// The position to report and the source it is in: the innermost known one.
fn position_of(err: &EvalAltResult) -> (Position, Option<String>) {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, src, inner, pos) | EvalAltResult::ErrorInModule(src, inner, pos) => {
            let (p, s) = position_of(inner);
            if p.is_none() {
                (*pos, (!src.is_empty()).then(|| src.clone()))
            } else {
                (p, s.or_else(|| (!src.is_empty()).then(|| src.clone())))
            }
        }
        other => (other.position(), None),
    }
}

/// Kind, message and value of an (unwrapped) script error.
fn classify(err: &EvalAltResult) -> (String, String, Dynamic) {
    use EvalAltResult as E;
    match err {
        E::ErrorRuntime(value, _) => {
            if let Some(m) = value.read_lock::<Map>()
                && let (Some(kind), Some(msg)) = (m.get("kind"), m.get("message"))
            {
                return (kind.to_string(), msg.to_string(), value.clone());
            }
            ("error".into(), value.to_string(), value.clone())
        }
        E::ErrorTerminated(..) => ("cancelled".into(), "the run was cancelled".into(), Dynamic::UNIT),
        E::ErrorTooManyOperations(_)
        | E::ErrorStackOverflow(_)
        | E::ErrorDataTooLarge(..)
        | E::ErrorTooManyModules(_)
        | E::ErrorTooManyVariables(_) => {
            ("limit".into(), err.to_string().split(" (line").next().unwrap_or_default().to_string(), Dynamic::UNIT)
        }
        E::ErrorParsing(p, _) => ("syntax".into(), p.to_string(), Dynamic::UNIT),
        other => ("script".into(), strip_position(&other.to_string()), Dynamic::UNIT),
    }
}

/// Rhai appends " (line N, position M)" to messages; the diagnostic has it already.
fn strip_position(text: &str) -> String {
    match text.rfind(" (line ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text.to_string(),
    }
}
