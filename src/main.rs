//! The `telefig` binary: parse arguments, run the command, turn the result
//! into an exit code. Invoked as `configure-serviceset`, it is `telefig start`.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
mod cli;

use cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(arguments()) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            if code == 2 {
                // It may quote an argument: escaped, as every message is.
                eprint!("{}", cli::printable(&err.render().to_string()));
            } else {
                let _ = err.print();
            }
            if code == 2 {
                // The deploy system shows only the tail: end with the summary.
                let text = err.kind().to_string();
                let first = err.to_string();
                let first = cli::printable(&first);
                let line = first.lines().next().unwrap_or(&text);
                let line = line.strip_prefix("error: ").unwrap_or(line);
                eprintln!("telefig: failed (exit 2): {line}");
            }
            return ExitCode::from(code);
        }
    };
    // A panic's message is masked like every other output.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let mut text = format!("thread '{}' {info}", thread.name().unwrap_or("<unnamed>"));
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            text.push_str(&format!("\n{backtrace}"));
        }
        eprintln!("{}", telefig::redact::current().mask(&text));
    }));
    let daemon = matches!(cli.command, cli::args::Command::Daemon(_));
    if daemon {
        // Before the runtime's threads exist (see the module's note).
        telefig::daemon::footprint::one_malloc_arena();
    }
    // The daemon logs what it repairs; commands print their own lines.
    let default_level = if daemon { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TELEFIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Log lines are masked like every other output (`telefig::redact`).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| telefig::redact::Writer(std::io::stderr()))
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
        Err(err) => ExitCode::from(cli::report_failure(&err)),
    }
}

/// `configure-serviceset -c F -e K=V` → `telefig start -c F -e K=V`;
/// `configure-serviceset -v` (or `--version`, as the deploy agent probes
/// it) → `telefig --version`.
fn arguments() -> Vec<OsString> {
    drop_in_arguments(std::env::args_os().collect())
}

fn drop_in_arguments(mut args: Vec<OsString>) -> Vec<OsString> {
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if invoked_as.as_deref() != Some("configure-serviceset") {
        return args;
    }
    let asks_version = args
        .iter()
        .skip(1)
        .any(|a| a == "-v" || a == "-V" || a == "--version");
    if asks_version {
        return vec![args.swap_remove(0), "--version".into()];
    }
    args.insert(1, "start".into());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn configure_serviceset_is_start_and_answers_the_version_probe() {
        assert_eq!(
            drop_in_arguments(args("/usr/bin/configure-serviceset -c f.conf -e A=1")),
            args("/usr/bin/configure-serviceset start -c f.conf -e A=1")
        );
        for probe in ["-v", "-V", "--version"] {
            assert_eq!(
                drop_in_arguments(args(&format!("configure-serviceset {probe}"))),
                args("configure-serviceset --version")
            );
        }
        assert_eq!(drop_in_arguments(args("telefig -V")), args("telefig -V"));
    }
}
