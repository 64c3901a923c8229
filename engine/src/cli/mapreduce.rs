//! `netscript mapreduce JOB.rhai`: a map-reduce job (`fn map(line)`,
//! `fn reduce(key, values)`, optionally `fn combine(key, values)`) run
//! locally on every core (`--input FILES`), or as one phase of Hadoop
//! Streaming (`--phase map` / `--phase reduce`: lines on standard input,
//! `key\tvalue` lines out), which is also how Spark's `RDD.pipe()` runs it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::HostArgs;

/// Which part of the job to run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Phase {
    /// The mapper: `map(line)` for each line of standard input.
    Map,
    /// The reducer: `reduce(key, values)` for each key of the sorted input.
    Reduce,
}

/// Arguments of `netscript mapreduce`.
#[derive(Args, Debug)]
pub struct MapReduceArgs {
    /// The job: a script defining `fn map(line)` and `fn reduce(key, values)`.
    #[arg(value_name = "JOB")]
    job: PathBuf,
    /// Run one phase of Hadoop Streaming on standard input.
    #[arg(long, value_enum, conflicts_with = "input")]
    phase: Option<Phase>,
    /// Run the whole job locally over the lines of these files.
    #[arg(long, value_name = "FILES", num_args = 1.., required_unless_present = "phase")]
    input: Vec<PathBuf>,
    /// Workers of a local run (default: every core).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

/// The code run after the job's own: the phase asked for.
fn driver(args: &MapReduceArgs) -> String {
    match args.phase {
        Some(Phase::Map) => "\nmapreduce::streaming_map(Fn(\"map\"));\n".into(),
        Some(Phase::Reduce) => "\nmapreduce::streaming_reduce(Fn(\"reduce\"));\n".into(),
        None => {
            let files: Vec<String> = args.input.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
            let workers = args.workers.map_or(String::new(), |n| format!("workers: {n}, "));
            format!(
                "\nlet opts = #{{{workers}sorted: true}};\n\
                 if is_def_fn(\"combine\", 2) {{ opts.combine = Fn(\"combine\"); }}\n\
                 for kv in mapreduce::run(#{{files: [{}]}}, Fn(\"map\"), Fn(\"reduce\"), opts) {{\n\
                 \x20   let v = if type_of(kv[1]) == \"string\" {{ kv[1] }} else {{ json::encode(kv[1]) }};\n\
                 \x20   print(`${{kv[0]}}` + \"\\t\" + v);\n\
                 }}\n",
                files.join(", ")
            )
        }
    }
}

/// Run the job; 0 on success, 1 on a script error, 2 on a usage error.
pub fn run(args: &MapReduceArgs) -> i32 {
    let name = args.job.display().to_string();
    let source = match std::fs::read_to_string(&args.job) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netscript: cannot read {name}: {e}");
            return 2;
        }
    };
    super::run::run_source(&args.host, &name, &format!("{source}{}", driver(args)), &[])
}
