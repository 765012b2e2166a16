//! Each cron entry as a CronJob. Under telefig the daemon runs the command
//! on the host, one run at a time; here a Pod runs it in the image of the
//! container it belongs to, with that container's environment, mounts and
//! resources, and `concurrencyPolicy: Forbid`.
//!
//! Real files often run `docker exec -i CONTAINER cmd…` from cron: when
//! CONTAINER is in the serviceset, the CronJob runs `cmd…` in that
//! container's image (a new Pod, not inside the running one — said on
//! stderr).
//!
//! [`entries`] is the one place that reads `Expanded::cron`.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::labels::{object_meta, pod_meta};
use super::names::{NameKind, check_name, dns_label};
use super::pod::{PodKind, pod_spec};
use super::secrets::Secrets;
use super::{ANNOTATION_NOT_MAPPED, Error, Options};
use crate::platform::{ContainerSpec, Expanded, Role};

/// One cron entry, as far as the export needs it.
pub(super) struct Entry<'a> {
    pub(super) owner: &'a str,
    pub(super) name: &'a str,
    pub(super) schedule: &'a str,
    pub(super) command: &'a [String],
    pub(super) user: Option<&'a str>,
    /// An IANA zone; none: the host's local time under telefig.
    pub(super) time_zone: Option<&'a str>,
}

pub(super) fn entries(expanded: &Expanded) -> Vec<Entry<'_>> {
    expanded
        .cron
        .iter()
        .map(|c| Entry {
            owner: &c.owner,
            name: &c.name,
            schedule: &c.schedule,
            command: &c.command,
            user: c.user.as_deref(),
            time_zone: c.tz.as_deref(),
        })
        .collect()
}

/// The CronJob for `entry`, or none (with a note) when Kubernetes has no
/// such schedule.
pub(super) fn cron_job(
    expanded: &Expanded,
    entry: &Entry,
    name: &str,
    secrets: &Secrets,
    options: &Options,
    not_mapped: &mut Vec<String>,
) -> Result<Option<CronJob>, Error> {
    let schedule = entry.schedule.trim();
    if schedule.starts_with("@every") || schedule == "@reboot" {
        not_mapped.push(format!(
            "cron entry {} of {} (schedule `{schedule}`: a CronJob takes five fields or @hourly-style macros)",
            entry.name, entry.owner
        ));
        return Ok(None);
    }
    let schedule = cron_schedule(schedule).map_err(|why| Error::Schedule {
        owner: entry.owner.to_owned(),
        entry: entry.name.to_owned(),
        schedule: schedule.to_owned(),
        why,
    })?;
    check_name(name, NameKind::CronJob)?;
    let mut notes = Vec::new();
    let (target, argv) = exec_target(expanded, entry, &mut notes);
    let mut run = target.clone();
    run.role = Role::Job;
    run.depends_on.clear();
    run.create.entrypoint = Some(argv);
    run.create.cmd = None;
    run.create.healthcheck = None;
    run.create.host_config.restart_policy.name = "no".into();
    match entry.user {
        None => {}
        Some("root") => run.create.user = Some("0".into()),
        Some(user) if user.split(':').all(|p| p.parse::<u32>().is_ok()) => {
            run.create.user = Some(user.to_owned())
        }
        Some(user) => notes.push(format!(
            "user {user} of cron entry {} (Kubernetes takes numeric ids: set securityContext.runAsUser)",
            entry.name
        )),
    }
    let pod = pod_spec(&[&run], PodKind::Job, secrets)?;
    notes.extend(pod.not_mapped);
    if entry.time_zone.is_none() {
        notes.push(format!(
            "the time zone of cron entry {} (telefig uses the host's local time; without timeZone the CronJob uses kube-controller-manager's)",
            entry.name
        ));
    }
    let annotations = if notes.is_empty() {
        Default::default()
    } else {
        [(ANNOTATION_NOT_MAPPED.to_owned(), notes.join("; "))].into()
    };
    not_mapped.extend(notes);
    let mut template_notes = Vec::new();
    let pod_meta = pod_meta(&expanded.serviceset, name, &[&run], &mut template_notes);
    not_mapped.extend(template_notes);
    Ok(Some(CronJob {
        metadata: object_meta(
            name,
            options.namespace.as_deref(),
            &expanded.serviceset,
            annotations,
        ),
        spec: CronJobSpec {
            schedule,
            time_zone: entry.time_zone.map(str::to_owned),
            concurrency_policy: Some("Forbid".into()),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    backoff_limit: Some(0),
                    template: PodTemplateSpec {
                        metadata: Some(pod_meta),
                        spec: Some(pod.spec),
                    },
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    }))
}

/// `schedule` as a CronJob reads it (five fields or a macro) with the
/// same meaning, or why there is none. Six fields (seconds first) become
/// five when the seconds are 0. A day-of-month or weekday that is a
/// stepped star (`*/2`) is a star to telefig (Vixie cron: the days are
/// ANDed) but not to the CronJob controller (it ORs them): with both
/// restricted, the meaning would change.
pub(super) fn cron_schedule(schedule: &str) -> Result<String, &'static str> {
    if schedule.starts_with('@') {
        return Ok(schedule.to_owned());
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let five = match fields.as_slice() {
        [_, _, _, _, _] => &fields[..],
        [seconds, rest @ ..] if rest.len() == 5 => {
            if seconds.is_empty() || !seconds.bytes().all(|b| b == b'0') {
                return Err(
                    "it runs on seconds, and a CronJob has five fields (minute hour day month weekday): run it at second 0, or on whole minutes",
                );
            }
            rest
        }
        _ => return Err("a CronJob takes five fields (minute hour day month weekday)"),
    };
    let (dom, dow) = (five[2], five[4]);
    let stepped_star = |f: &str| f.starts_with('*') && f != "*" && f != "*/1";
    if (stepped_star(dom) && dow != "*") || (stepped_star(dow) && dom != "*") {
        return Err(
            "with a stepped star (`*/2`) in one day field and the other restricted, telefig runs it on days matching both and a CronJob on days matching either: write the days without `*/`",
        );
    }
    Ok(five.join(" "))
}

/// The CronJob's name: `<serviceset>-<entry>` as a DNS label, the entry
/// alone when it already starts with the serviceset's name.
pub(super) fn cron_name(serviceset: &str, entry: &str) -> String {
    let entry = dns_label(entry, 52);
    if entry == serviceset || entry.starts_with(&format!("{serviceset}-")) {
        entry
    } else {
        dns_label(&format!("{serviceset}-{entry}"), 52)
    }
}

/// Characters that make a command line more than words to split.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '$', '`', '(', ')', '*', '?', '~', '#',
];

/// The container whose image runs the command, and the command: the
/// owner and the entry's command, or the target of `docker exec`.
fn exec_target<'a>(
    expanded: &'a Expanded,
    entry: &Entry,
    notes: &mut Vec<String>,
) -> (&'a ContainerSpec, Vec<String>) {
    let owner = expanded
        .get(entry.owner)
        .expect("a cron entry belongs to a container of the serviceset");
    // A string command is `/bin/sh -c LINE`; a LINE that is plain words
    // (no pipes, redirections or expansions) reads like the argv it stands for.
    let split = match entry.command {
        [sh, c, line] if sh == "/bin/sh" && c == "-c" && !line.contains(SHELL_SYNTAX) => {
            shell_words::split(line).ok()
        }
        _ => None,
    };
    let words = split.as_deref().unwrap_or(entry.command);
    if words.len() >= 3 && words[0] == "docker" && words[1] == "exec" {
        let mut i = 2;
        while i < words.len() && words[i].starts_with('-') {
            let takes_value = matches!(
                words[i].as_str(),
                "-u" | "--user" | "-e" | "--env" | "-w" | "--workdir"
            );
            if takes_value {
                notes.push(format!(
                    "docker exec option {} of cron entry {}",
                    words[i], entry.name
                ));
                i += 1;
            }
            i += 1;
        }
        if let Some(target) = words.get(i).and_then(|n| expanded.get(n))
            && i + 1 < words.len()
        {
            notes.push(format!(
                "cron entry {} ran `docker exec` in the running {}: the CronJob runs it in a new Pod from {}'s image and configuration",
                entry.name, target.name, target.name
            ));
            return (target, words[i + 1..].to_vec());
        }
    }
    (owner, entry.command.to_vec())
}
