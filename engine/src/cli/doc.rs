//! `netscript doc [NAME]`: the script reference, generated from the
//! registered functions, or the entries matching one name.

use clap::Args;

/// Arguments of `netscript doc`.
#[derive(Args, Debug)]
pub struct DocArgs {
    /// Show only the functions with this name (`recv_line`, `tcp::connect`).
    #[arg(value_name = "NAME")]
    name: Option<String>,
}

/// Print the reference; 1 if `NAME` matches nothing.
pub fn run(args: &DocArgs) -> i32 {
    let docs = netscript::docs::stdlib();
    match &args.name {
        None => {
            print!("{}", netscript::docs::markdown(&docs));
            0
        }
        Some(name) => {
            let found = netscript::docs::lookup(&docs, name);
            for d in &found {
                println!("{}\n  {}\n\n{}\n", d.display_name(), d.signature, d.doc.trim());
            }
            if found.is_empty() {
                eprintln!("netscript doc: no function named {name:?}");
                1
            } else {
                0
            }
        }
    }
}
