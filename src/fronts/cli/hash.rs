//! `basis hash FILE|-`: print the output hash of a file or of stdin.

use std::path::PathBuf;
use std::process::ExitCode;

use super::output;
use crate::ops;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to hash, or `-` for standard input. The bytes are hashed exactly as stored.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
    /// Print `{"output_hash": …, "bytes": …}` instead of the bare hash.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> ExitCode {
    output::render(args.json, ops::hash::hash_input(&args.input), |r| {
        r.output_hash.to_string()
    })
}
