//! The foldertrack binary: parse the command line, call the library, print one line on error.

use anyhow::{Context, Result};
use clap::Parser;
use foldertrack::cli::{Cli, Command, EwsCommand};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A closed pipe (`foldertrack … | head`) is the reader's choice, not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Ews(EwsCommand::Decode { files }) => {
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("{}: cannot read", file.display()))?;
                let value = foldertrack::ews::decode::decode(&text)
                    .with_context(|| format!("{}", file.display()))?;
                print_line(&serde_json::to_string_pretty(&value)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ews(EwsCommand::Requests { out }) => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create the folder", out.display()))?;
            for (name, xml) in foldertrack::ews::examples::requests() {
                let path = out.join(name);
                std::fs::write(&path, xml)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
                print_line(&path.display().to_string())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints one line to stdout, reporting a closed pipe as an error instead of panicking.
fn print_line(line: &str) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{line}")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
