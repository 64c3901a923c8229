//! Resource limits of a run, applied to the Rhai engine and the host.

use std::time::Duration;

use rhai::Engine;

/// Limits for scripts; `0` means unlimited for the sizes and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum Rhai operations per run (0 = unlimited).
    pub max_operations: u64,
    /// Maximum script call depth of the main script, at most
    /// `runtime::MAIN_CALL_LEVELS` (1,000, Python's default recursion limit;
    /// a host with more does not build). Tasks and connection handlers get
    /// the smaller of this and `runtime::MAX_CALL_LEVELS` (64 in release
    /// builds), what their smaller stacks hold.
    pub max_call_levels: usize,
    /// Maximum string length in bytes (0 = unlimited).
    pub max_string_size: usize,
    /// Maximum array and blob length (0 = unlimited).
    pub max_array_size: usize,
    /// Maximum map size (0 = unlimited).
    pub max_map_size: usize,
    /// Wall-clock limit of a run (`None` = unlimited).
    pub deadline: Option<Duration>,
    /// Maximum tasks running or waiting at once (0 = what the kernel's
    /// memory-map limit allows, `runtime::default_task_ceiling`).
    pub max_tasks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 0,
            max_call_levels: netscript_stdlib::runtime::MAIN_CALL_LEVELS,
            max_string_size: 0,
            max_array_size: 0,
            max_map_size: 0,
            deadline: None,
            max_tasks: 0,
        }
    }
}

impl Limits {
    /// Whether these limits can be honoured: the call depth must fit the
    /// main script's stack.
    ///
    /// # Errors
    /// A message naming the setting and its cap.
    pub fn check(&self) -> Result<(), String> {
        let cap = netscript_stdlib::runtime::MAIN_CALL_LEVELS;
        if self.max_call_levels > cap {
            return Err(format!(
                "--max-call-levels is at most {cap} (what the main script's stack holds), got {}",
                self.max_call_levels
            ));
        }
        Ok(())
    }

    /// Configure `engine` with these limits.
    pub fn apply(&self, engine: &mut Engine) {
        engine.set_max_operations(self.max_operations);
        // Deeper calls than the main stack holds would overflow it: Rhai has
        // no stack probes. Tasks start their calls lower (`Callable::call`).
        engine.set_max_call_levels(self.max_call_levels.min(netscript_stdlib::runtime::MAIN_CALL_LEVELS));
        engine.set_max_string_size(self.max_string_size);
        engine.set_max_array_size(self.max_array_size);
        engine.set_max_map_size(self.max_map_size);
        // Rhai's debug-build defaults (32, 16) reject a closure with a loop
        // inside a function (`serve(|c| { … })` in a test case); these are
        // its release defaults, parsed on the host thread, not a task stack.
        engine.set_max_expr_depths(64, 32);
    }
}
