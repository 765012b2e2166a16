//! The `telefig` binary: parse arguments, run the command, turn the result
//! into an exit code. Invoked as `configure-serviceset`, it is `telefig start`.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use telefig::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(arguments()) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            if code == 2 {
                // The deploy system shows only the tail: end with the summary.
                let text = err.kind().to_string();
                let first = err.to_string();
                let line = first.lines().next().unwrap_or(&text);
                let line = line.strip_prefix("error: ").unwrap_or(line);
                eprintln!("telefig: failed (exit 2): {line}");
            }
            return ExitCode::from(code);
        }
    };
    // The daemon logs what it repairs; commands print their own lines.
    let default_level = if matches!(cli.command, cli::args::Command::Daemon(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TELEFIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            let code = cli::exit_code(&err);
            // The full chain first; the deploy system shows only the tail, so
            // the last line is a one-line summary.
            eprintln!("error: {err:#}");
            let chain = format!("{err:#}");
            let summary = chain.lines().next().unwrap_or_default();
            eprintln!("telefig: failed (exit {code}): {summary}");
            ExitCode::from(code)
        }
    }
}

/// `configure-serviceset -c F -e K=V` → `telefig start -c F -e K=V`.
fn arguments() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if invoked_as.as_deref() == Some("configure-serviceset") {
        args.insert(1, "start".into());
    }
    args
}
