//! The `netscript` command: `run`, and the other subcommands in `cli/`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
