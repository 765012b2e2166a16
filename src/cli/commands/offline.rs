//! Commands that need no Docker: validate, render, completions, man.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Outcome;
use crate::cli::args::{Cli, Global, RenderArgs, RenderFormat};
use crate::cli::load::{load, say_resolved};
use crate::cli::output::print_json;

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
        println!(
            "{}: valid — serviceset `{}`, {} containers, {} cron entries",
            loaded.file.display(),
            e.serviceset,
            e.containers.len(),
            e.cron.len()
        );
        println!("start order: {}", loaded.graph.start_order().join(" → "));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render(g: &Global, args: &RenderArgs) -> Outcome {
    let loaded = load(g)?;
    say_resolved(&loaded);
    if args.format == RenderFormat::Kubernetes {
        // What a Pod cannot express is a problem with the input: exit 2.
        let pod = crate::export::kubernetes::pod(&loaded.expanded, &loaded.graph).map_err(|e| {
            crate::cli::UsageError(format!(
                "cannot render {} as a Kubernetes Pod: {e}",
                loaded.file.display()
            ))
        })?;
        let yaml = crate::yaml::to_string(&pod)
            .map_err(|e| anyhow::anyhow!("cannot print the Pod as YAML: {e}"))?;
        print!("{yaml}");
        return Ok(ExitCode::SUCCESS);
    }
    let rendered: Vec<_> = loaded
        .expanded
        .containers
        .iter()
        .map(|c| c.rendered())
        .collect();
    print_json(&rendered)?;
    Ok(ExitCode::SUCCESS)
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
