//! `mcx`: one binary for the server (`mcx serve`) and its clients (`mcx login`,
//! `mcx group ...`, `mcx events`). Exit codes (also in `mcx --help`): 0 all was done;
//! 1 an error (the message says why); 2 the command line is wrong; 3 the server answered
//! but did not do all that was asked (the output says what and why).

mod bench;
mod cli;
mod commands;
mod demo;
mod local_systems;
mod output;
mod secrets;
mod sessions;

use std::process::ExitCode;

use clap::Parser as _;

/// How much of what was asked a command did: its exit code (0 or 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// All of it.
    All,
    /// The server answered, but did nothing or only part (the output says why).
    NotAll,
}

impl Done {
    pub(crate) fn all_if(all: bool) -> Self {
        if all { Done::All } else { Done::NotAll }
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcx: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(Done::All) => ExitCode::SUCCESS,
        Ok(Done::NotAll) => ExitCode::from(3),
        Err(e) => {
            eprintln!("mcx: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
