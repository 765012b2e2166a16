//! Commands that need no Docker: validate, render, completions, man.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Outcome;
use crate::cli::args::{Cli, Global, RenderArgs, RenderFormat};
use crate::cli::load::{load, say_resolved};
use crate::cli::output::{errln, out, outln, print_json};

pub fn validate(g: &Global) -> Outcome {
    let loaded = load(g)?;
    say_resolved(&loaded);
    let e = &loaded.expanded;
    if g.json {
        print_json(&serde_json::json!({
            "file": loaded.file,
            "serviceset": e.serviceset,
            "valid": true,
            "containers": e.containers.len(),
            "start_order": loaded.graph.start_order(),
            "cron": e.cron.len(),
        }))?;
    } else {
        outln!(
            "{}: valid — serviceset `{}`, {} containers, {} cron entries",
            crate::cli::printable(&loaded.file.display().to_string()),
            e.serviceset,
            e.containers.len(),
            e.cron.len()
        );
        outln!("start order: {}", loaded.graph.start_order().join(" → "));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render(g: &Global, args: &RenderArgs) -> Outcome {
    if args.format == RenderFormat::Kubernetes {
        return render_kubernetes(g, args);
    }
    if args.replicas.is_some() || args.namespace.is_some() {
        return Err(crate::cli::UsageError(
            "--replicas and --namespace apply to --format kubernetes only".into(),
        )
        .into());
    }
    let loaded = load(g)?;
    say_resolved(&loaded);
    let rendered: Vec<_> = loaded
        .expanded
        .containers
        .iter()
        .map(|c| c.rendered())
        .collect();
    print_json(&rendered)?;
    Ok(ExitCode::SUCCESS)
}

/// The objects on stdout; what could not be mapped, one line each, on stderr.
#[cfg(feature = "kubernetes")]
fn render_kubernetes(g: &Global, args: &RenderArgs) -> Outcome {
    use telefig::export::kubernetes::{Options, export, to_yaml};
    let loaded = load(g)?;
    say_resolved(&loaded);
    let options = Options {
        replicas: args.replicas.unwrap_or(1),
        namespace: args.namespace.clone(),
    };
    // What Kubernetes cannot express is a problem with the input: exit 2,
    // at the line it comes from when it comes from one.
    let manifest = export(&loaded.expanded, &loaded.graph, &options).map_err(|e| {
        let message = format!("cannot render as Kubernetes objects: {e}");
        match e.place() {
            Some((container, field)) => anyhow::Error::from(telefig::serviceset::Error::from(
                loaded.set.error_at(container, Some(field), message),
            )),
            None => crate::cli::UsageError(format!("{}: {message}", loaded.file.display())).into(),
        }
    })?;
    let yaml = to_yaml(&manifest)
        .map_err(|e| anyhow::anyhow!("cannot print the Kubernetes objects as YAML: {e}"))?;
    out!("{yaml}");
    for note in &manifest.not_mapped {
        errln!("telefig: not mapped to Kubernetes: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Built with `--no-default-features`: the export is not in this binary.
#[cfg(not(feature = "kubernetes"))]
fn render_kubernetes(_: &Global, _: &RenderArgs) -> Outcome {
    Err(crate::cli::UsageError(
        "this telefig was built without the Kubernetes export (cargo feature `kubernetes`): \
         use a build with default features, or render --format engine"
            .into(),
    )
    .into())
}

pub fn completions(shell: clap_complete::Shell) -> Outcome {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "telefig",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn man() -> Outcome {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}
