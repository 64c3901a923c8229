//! `netscript watch` (being written).
use super::HostArgs;
use clap::Args;
/// Arguments of `netscript watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    host: HostArgs,
}
/// Watch.
pub fn watch(_args: &WatchArgs) -> i32 {
    0
}
/// run --watch.
pub fn run_watch(_args: &super::run::RunArgs) -> i32 {
    0
}
