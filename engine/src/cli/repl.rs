//! `netscript repl` (being written).
use super::HostArgs;
use clap::Args;
/// Arguments of `netscript repl`.
#[derive(Args, Debug)]
pub struct ReplArgs {
    #[command(flatten)]
    host: HostArgs,
}
/// Run the REPL.
pub fn repl(_args: &ReplArgs) -> i32 {
    0
}
