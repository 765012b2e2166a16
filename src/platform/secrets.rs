//! Which values of an expanded serviceset are secret, and a container's
//! create body with them masked (for output) or concealed (for a record).
//!
//! [`collect`] builds the serviceset's [`Redactor`] once, where every
//! variable is known: the template variables that are secret (by name, or
//! listed in the platform's `secrets:`) and were used, the sidecar
//! parameters whose
//! names look secret, and the value of every container environment entry
//! whose key looks secret, whatever produced it. The rest of telefig only
//! applies it (`crate::redact`).

use std::borrow::Cow;

use super::{CreateBody, Expanded, Platform, Role, param_text};
use crate::diagnostic::SourceError;
use crate::redact::{self, MASK, Redactor, digest, is_digest, looks_secret};
use crate::serviceset::schema::SidecarEntry;
use crate::serviceset::{Serviceset, Vars};

/// Environment keys whose values telefig never prints (SPEC §7).
pub fn is_secret_key(key: &str) -> bool {
    looks_secret(key)
}

/// `KEY=VALUE` with the value masked when the key looks secret (whatever
/// its length: by position, not by value).
pub fn mask_env_entry(entry: &str) -> String {
    match entry.split_once('=') {
        Some((k, _)) if is_secret_key(k) => format!("{k}={MASK}"),
        _ => entry.to_owned(),
    }
}

/// `KEY=VALUE` with the value replaced by its digest when the key looks
/// secret; an entry that already holds a digest is left as it is.
pub fn conceal_env_entry(entry: &str) -> String {
    match entry.split_once('=') {
        Some((k, v)) if is_secret_key(k) && !is_digest(v) => format!("{k}={}", digest(v)),
        _ => entry.to_owned(),
    }
}

/// The secret values of `expanded`, expanded from `set` with `vars`.
pub(super) fn collect(
    set: &Serviceset,
    platform: &Platform,
    vars: &Vars,
    expanded: &Expanded,
) -> Redactor {
    let listed = &platform.secrets;
    let params = set
        .containers
        .iter()
        .flat_map(|c| &c.entry.sidecars.0)
        .filter_map(|(_, sidecar)| match sidecar {
            SidecarEntry::Params(params) => Some(&params.0),
            SidecarEntry::Cron(_) => None,
        })
        .flatten()
        .filter(|(name, _)| looks_secret(name) || listed.contains(name))
        .filter_map(|(_, value)| param_text(value).ok());
    let environment = expanded
        .containers
        .iter()
        .flat_map(|c| &c.create.env)
        .filter_map(|e| e.split_once('='))
        .filter(|(k, _)| is_secret_key(k))
        .map(|(_, v)| v.to_owned());
    Redactor::new(
        vars.used_secret_values(listed)
            .into_iter()
            .chain(params)
            .chain(environment),
    )
}

/// Names and image references are not secret: Docker shows them, the
/// state dir is named and keyed by them, the record keeps the references to
/// pull and clean up. One that holds a secret value is refused.
pub(super) fn check_public(set: &Serviceset, expanded: &Expanded) -> Result<(), SourceError> {
    let secrets = &expanded.secrets;
    let holds = |text: &str| secrets.mask(text) != text;
    let refuse = |owner: &str, field: Option<&str>, what: String| {
        Err(set.error_at(
            owner,
            field,
            format!("{what} holds the value of a secret variable; names and image references are shown by Docker and kept in the state dir, so build them from variables that are not secret"),
        ))
    };
    if holds(&expanded.serviceset) {
        return refuse("", None, "the serviceset's name".into());
    }
    for c in &expanded.containers {
        let owner = match &c.role {
            Role::Sidecar { owner, .. } => owner.as_str(),
            _ => c.name.as_str(),
        };
        if holds(&c.name) {
            return refuse(owner, None, format!("the name of `{}`", c.name));
        }
        if c.image
            .sources
            .iter()
            .chain([&c.image.reference])
            .any(|r| holds(r))
        {
            return refuse(
                owner,
                Some("image"),
                format!("the image reference of `{}`", c.name),
            );
        }
    }
    for job in &expanded.cron {
        if holds(&job.name) || holds(&job.schedule) {
            return refuse(
                &job.owner,
                Some("cron"),
                format!("the name or schedule of a cron entry of `{}`", job.owner),
            );
        }
    }
    Ok(())
}

/// `body` with `f` applied to each of its strings, map keys included,
/// whatever field holds them.
fn map_strings(body: &CreateBody, f: &dyn for<'a> Fn(&'a str) -> Cow<'a, str>) -> CreateBody {
    let mut value = serde_json::to_value(body).expect("a create body serializes");
    redact::map_json_strings(&mut value, true, f);
    // Every field of the body is text, a number or a flag: replacing text
    // in it keeps it a body.
    serde_json::from_value(value).expect("a create body with other text is a create body")
}

/// `body` as a record keeps it: a secret environment key's value as its
/// digest, and each of `secrets`' values, in any field, as a placeholder.
pub fn conceal_body(body: &CreateBody, secrets: &Redactor) -> CreateBody {
    let mut body = body.clone();
    body.env = body.env.iter().map(|e| conceal_env_entry(e)).collect();
    if secrets.is_empty() {
        return body;
    }
    map_strings(&body, &|s| secrets.conceal(s))
}

/// `body` with each of `secrets`' values masked, in any field but the
/// values of secret environment keys, which are left for the caller.
pub fn mask_body_but_secret_env(body: &CreateBody, secrets: &Redactor) -> CreateBody {
    if secrets.is_empty() {
        return body.clone();
    }
    let mut masked = map_strings(body, &|s| secrets.mask(s));
    masked.env = body
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, _)) if is_secret_key(k) => e.clone(),
            _ => secrets.mask(e).into_owned(),
        })
        .collect();
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{ContainerSpec, Role};

    const TOKEN: &str = "tok-9d2e71";

    fn body(token: &str) -> CreateBody {
        let mut body = CreateBody {
            image: "x:1".into(),
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("run --token {token}"),
            ]),
            env: vec![
                format!("API_TOKEN={token}"),
                format!("GREETING=hi {token}"),
                "DB_PASSWORD=short".into(),
                "HEAP=4G".into(),
            ],
            ..Default::default()
        };
        body.labels.insert("auth".into(), token.into());
        body.labels.insert(token.into(), "as a key".into());
        body
    }

    /// Docker shows names and image references, and the state dir is
    /// named by them: one that holds a secret value is refused.
    #[test]
    fn names_and_image_references_holding_a_secret_are_refused() {
        let vars = Vars::new([("API_TOKEN".into(), TOKEN.into())], []);
        let platform = Platform::parse(
            std::path::Path::new("p.yaml"),
            "registries: {primary: reg.test}\nsidecars:\n  metrics: {image: 'm:{{token}}', params: {token: ~}}\n",
        )
        .unwrap();
        for (file, want) in [
            (
                "web-{{API_TOKEN}}:\n  docker: {image: web, version: v1}\n",
                "s.conf:1:1: the name of `web-<masked>` holds the value of a secret variable",
            ),
            (
                "web:\n  docker: {image: web, version: '{{API_TOKEN}}'}\n",
                "the image reference of `web` holds the value of a secret variable",
            ),
            (
                "web:\n  docker: {image: web, version: v1}\n  sidecars:\n    metrics: {token: secret-param-1}\n",
                "the image reference of `web-metrics` holds",
            ),
            (
                "web:\n  docker: {image: web, version: v1}\n  sidecars:\n    cron: {'c{{API_TOKEN}}': {schedule: '@daily', command: x}}\n",
                "the name or schedule of a cron entry of `web` holds",
            ),
        ] {
            let set =
                crate::serviceset::parse(std::path::Path::new("s.conf"), file, &vars).unwrap();
            let err = crate::platform::expand(&set, "shop", &platform, &vars)
                .unwrap_err()
                .to_string();
            let shown = Redactor::new([TOKEN]).mask(&err);
            assert!(shown.contains(want), "{file}: {shown}");
        }
        let set = crate::serviceset::parse(
            std::path::Path::new("s.conf"),
            "web:\n  docker: {image: web, version: v1, command: ['{{API_TOKEN}}']}\n",
            &vars,
        )
        .unwrap();
        assert!(crate::platform::expand(&set, "shop", &platform, &vars).is_ok());
    }

    #[test]
    fn env_entries() {
        assert_eq!(
            mask_env_entry("DB_PASSWORD=hunter2"),
            "DB_PASSWORD=<masked>"
        );
        assert_eq!(mask_env_entry("A=b=c"), "A=b=c");
        assert_eq!(
            conceal_env_entry("API_TOKEN=x"),
            format!("API_TOKEN={}", digest("x"))
        );
        let concealed = conceal_env_entry("API_TOKEN=x");
        assert_eq!(conceal_env_entry(&concealed), concealed);
        assert_eq!(conceal_env_entry("HEAP=4G"), "HEAP=4G");
    }

    #[test]
    fn a_concealed_body_holds_no_secret_value_in_any_field() {
        let secrets = Redactor::new([TOKEN]);
        let stored = conceal_body(&body(TOKEN), &secrets);
        let text = serde_json::to_string(&stored).unwrap();
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains("short"), "{text}");
        assert!(
            text.contains(&format!("API_TOKEN={}", digest(TOKEN))),
            "{text}"
        );
        assert!(text.contains("GREETING=hi <secret:sha256:"), "{text}");
        assert!(text.contains("HEAP=4G"), "{text}");
        assert_eq!(conceal_body(&stored, &secrets), stored);
    }

    #[test]
    fn masking_for_export_leaves_secret_env_values_to_the_caller() {
        let masked = mask_body_but_secret_env(&body(TOKEN), &Redactor::new([TOKEN]));
        assert_eq!(masked.env[0], format!("API_TOKEN={TOKEN}"));
        assert_eq!(masked.env[1], "GREETING=hi <masked>");
        assert_eq!(masked.labels["auth"], MASK);
        assert_eq!(masked.cmd.unwrap()[2], "run --token <masked>");
    }

    /// `plan` compares the file's body with the record's, where secret
    /// values are concealed: the same secret is no change, another one is.
    #[test]
    fn changed_fields_see_through_concealed_secrets() {
        let secrets = Redactor::new([TOKEN]);
        let recorded = conceal_body(&body(TOKEN), &secrets);
        let spec = |token: &str| ContainerSpec {
            name: "web".into(),
            role: Role::Main,
            image: crate::platform::Image {
                reference: "x:1".into(),
                sources: vec![],
            },
            depends_on: vec![],
            health: None,
            stop_grace: std::time::Duration::from_secs(1),
            drain: Default::default(),
            bake: std::time::Duration::ZERO,
            config_hash: crate::platform::config_hash(&body(token)),
            create: body(token),
        };
        assert!(spec(TOKEN).changed_fields(&recorded, &secrets).is_empty());
        let other = Redactor::new(["tok-other-1"]);
        assert_eq!(
            spec("tok-other-1").changed_fields(&recorded, &other),
            ["Cmd", "Env", "Labels"]
        );
        assert_ne!(spec(TOKEN).config_hash, spec("tok-other-1").config_hash);
    }
}
