//! Command-line arguments, as clap parses them. No behaviour lives here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use telefig::name::{NameError, ServicesetName};

#[derive(Debug, Parser)]
#[command(
    name = "telefig",
    version,
    about = "Launch a serviceset and its platform sidecars on Docker, in dependency order, and prove them healthy.",
    long_about = None,
    after_help = "Exit codes: 0 success; 1 runtime failure (Docker, pull, gate); 2 bad input or usage; 3 unhealthy (status)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The serviceset file.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// A template variable; overrides the environment. May repeat.
    #[arg(short = 'e', value_name = "KEY=VALUE", global = true, value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// The serviceset's name (default: $ENV_NAME, else the file name).
    #[arg(long, value_name = "NAME", global = true, value_parser = parse_name)]
    pub name: Option<ServicesetName>,
    /// The platform file (default: /etc/telefig/platform.yaml, else built in).
    #[arg(long, value_name = "FILE", global = true, env = "TELEFIG_PLATFORM")]
    pub platform: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where applied servicesets and host locks are kept.
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        env = "TELEFIG_STATE_DIR",
        default_value = "/var/lib/telefig"
    )]
    pub state_dir: PathBuf,
    /// Stop without draining (incidents): `start`, `stop`, `restart`, `down`, `rollback`.
    #[arg(long, global = true)]
    pub no_drain: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull, then create/recreate/start in order and wait for every gate.
    Start(StartArgs),
    /// Stop the serviceset's containers in reverse order.
    Stop(TimeoutArgs),
    /// Restart a container (or all) and, in order, what depends on it.
    Restart(RestartArgs),
    /// Stop and remove the serviceset's containers.
    Down(TimeoutArgs),
    /// Remove old images telefig pulled (never the current or rollback version).
    Gc(GcArgs),
    /// Show telefig's containers on this host (no file needed), or one
    /// container with its last health probes.
    Status(StatusArgs),
    /// Show what `start` would do, and why.
    Plan,
    /// Print the expanded containers (Engine API create bodies, or Kubernetes objects).
    Render(RenderArgs),
    /// Parse, template, expand and order the serviceset; no Docker needed.
    Validate,
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Follow the daemon's telefig-level events (`--name` narrows, `--json` for machines).
    Events,
    /// Keep every recorded serviceset as recorded: boot repair, drift repair, cron.
    Daemon(DaemonArgs),
    /// Re-apply the previous record of a serviceset, or with --to an earlier one.
    Rollback(RollbackArgs),
    /// Every deploy of a serviceset (or of each in the state dir), newest
    /// first; no Docker needed.
    History(HistoryArgs),
    /// Check Docker, live-restore, registries, the state dir and the clock.
    Doctor,
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub timeout: TimeoutArgs,
    /// When to pull images.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TimeoutArgs {
    /// Bound on the whole operation, lock wait included ("90s", "10m").
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct RestartArgs {
    /// The container to restart; all when omitted.
    pub container: Option<String>,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// One container: its status and its last 50 health probes.
    pub container: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    pub container: String,
    /// Keep following new output.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// What to print.
    #[arg(long, value_enum, default_value_t = RenderFormat::Engine)]
    pub format: RenderFormat,
    /// With --format kubernetes: the Deployment's replicas.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub replicas: Option<i32>,
    /// With --format kubernetes: the namespace of every object.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// Docker Engine API create bodies plus the name.
    Engine,
    /// Kubernetes objects: Deployment, Jobs, CronJobs, Secret (for when one host is outgrown).
    Kubernetes,
}

#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// How long a container may stay unhealthy before the daemon restarts it.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration, default_value = "60s")]
    pub unhealthy_budget: Duration,
    /// Do the boot repair, then exit (no watching, no cron).
    #[arg(long)]
    pub once: bool,
    /// Serve Prometheus metrics on this address (`/metrics`), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Write Prometheus metrics to this file every 10 s (node_exporter textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
    /// Bound on each Docker read (list, inspect) the daemon makes, and the
    /// margin each repair gets beyond its gates' budgets: a dockerd that
    /// stops answering costs a repair, not the daemon.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_positive_duration, default_value = "60s")]
    pub docker_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The serviceset to roll back.
    #[arg(value_parser = parse_name)]
    pub name: ServicesetName,
    /// Go to the recorded version with this commit (or a unique start of
    /// it), while its images are on the host; see `telefig history`.
    #[arg(long, value_name = "COMMIT")]
    pub to: Option<String>,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The serviceset; every one in the state dir when omitted (or `--name`'s).
    #[arg(value_parser = parse_name)]
    pub name: Option<ServicesetName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull only images not present locally.
    Missing,
    /// Pull every image the plan needs.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

fn parse_name(s: &str) -> Result<ServicesetName, NameError> {
    ServicesetName::parse(s)
}

fn parse_duration(s: &str) -> Result<Duration, telefig::duration::Error> {
    telefig::duration::parse(s)
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err(format!(
            "`{s}` is zero: Docker needs some time to answer; give a positive duration (\"60s\")"
        )),
        other => other.map_err(|e| e.to_string()),
    }
}
