//! The platform's container defaults (`defaults:` in the platform file):
//! what every container gets unless its own `docker:` section (or its
//! sidecar template) says otherwise.
//!
//! - `logging`: the log driver and options. Docker's own default,
//!   `json-file` without `max-size`, grows until the disk is full, so the
//!   compiled-in default is `json-file` with `max-size: 100m, max-file: 5`.
//! - `cgroup_parent`: a cgroup every container of a serviceset runs under
//!   (templated, e.g. `telefig-{{serviceset}}.slice`); none by default.
//! - `drain_period`, `drain_check`: see `platform::drain`.
//! - `bake_period`: how long a deploy watches what it created after its
//!   gates passed; 0 (no bake) by default.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::container::LogConfig;
use super::drain::DrainCheckTemplate;
use crate::serviceset::schema::{BakePeriod, DurationValue, LoggingSection};

/// `defaults:` of the platform file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_logging")]
    pub logging: LoggingSection,
    /// Template text; `{{serviceset}}` is the serviceset's name.
    pub cgroup_parent: Option<String>,
    /// How long a declared service keeps serving after deregistering.
    pub drain_period: Option<DurationValue>,
    /// Polled during the drain period; the drain ends when it passes.
    pub drain_check: Option<DrainCheckTemplate>,
    /// How long a deploy watches what it created after its gates (a
    /// declared service's own `bake_period` wins); none by default.
    pub bake_period: Option<BakePeriod>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            logging: default_logging(),
            cgroup_parent: None,
            drain_period: None,
            drain_check: None,
            bake_period: None,
        }
    }
}

fn default_logging() -> LoggingSection {
    LoggingSection {
        driver: Some("json-file".into()),
        options: crate::serviceset::schema::KeyValues(vec![
            ("max-size".into(), "100m".into()),
            ("max-file".into(), "5".into()),
        ]),
    }
}

/// The log config a container runs with: its own `logging`, else the
/// platform's. A container that names its own driver takes none of the
/// platform's options (they belong to another driver); one that gives only
/// options keeps the platform's driver and adds to its options.
pub fn log_config(own: Option<&LoggingSection>, platform: &LoggingSection) -> LogConfig {
    let to_map =
        |s: &LoggingSection| -> BTreeMap<String, String> { s.options.0.iter().cloned().collect() };
    match own {
        Some(own) if own.driver.is_some() => LogConfig {
            driver: own.driver.clone().unwrap_or_default(),
            options: to_map(own),
        },
        Some(own) => {
            let mut options = to_map(platform);
            options.extend(to_map(own));
            LogConfig {
                driver: platform
                    .driver
                    .clone()
                    .unwrap_or_else(|| "json-file".into()),
                options,
            }
        }
        None => LogConfig {
            driver: platform
                .driver
                .clone()
                .unwrap_or_else(|| "json-file".into()),
            options: to_map(platform),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serviceset::schema::KeyValues;

    fn section(driver: Option<&str>, options: &[(&str, &str)]) -> LoggingSection {
        LoggingSection {
            driver: driver.map(Into::into),
            options: KeyValues(
                options
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn no_own_logging_takes_the_platform_limits() {
        let c = log_config(None, &Defaults::default().logging);
        assert_eq!(c.driver, "json-file");
        assert_eq!(c.options["max-size"], "100m");
        assert_eq!(c.options["max-file"], "5");
    }

    #[test]
    fn own_driver_replaces_the_platform_options() {
        let own = section(Some("local"), &[("max-size", "20m")]);
        let c = log_config(Some(&own), &Defaults::default().logging);
        assert_eq!(c.driver, "local");
        assert_eq!(
            c.options,
            BTreeMap::from([("max-size".to_owned(), "20m".to_owned())])
        );
    }

    #[test]
    fn own_options_only_add_to_the_platform_driver() {
        let own = section(None, &[("max-size", "10m")]);
        let c = log_config(Some(&own), &Defaults::default().logging);
        assert_eq!(c.driver, "json-file");
        assert_eq!(c.options["max-size"], "10m");
        assert_eq!(c.options["max-file"], "5");
    }

    fn expand(platform: &str, serviceset: &str) -> crate::platform::Expanded {
        let platform =
            crate::platform::Platform::parse(std::path::Path::new("p.yaml"), platform).unwrap();
        let vars = crate::serviceset::Vars::new([("BUILD_COMMIT".into(), "c1".into())], []);
        let set =
            crate::serviceset::parse(std::path::Path::new("s.conf"), serviceset, &vars).unwrap();
        crate::platform::expand(&set, "shop", &platform, &vars).unwrap()
    }

    const TEMPLATES: &str = "sidecars:\n  metrics: {image: m:1, mem_limit: 64m, cpus: 0.25}\n  proxy: {image: p:1, cgroup_parent: proxies.slice}\n";

    #[test]
    fn sidecar_template_bounds_reach_the_create_body() {
        let out = expand(TEMPLATES, "web:\n  sidecars: {metrics: , proxy: }\n");
        let metrics = &out.get("web-metrics").unwrap().create.host_config;
        assert_eq!(metrics.memory, Some(64 * 1024 * 1024));
        assert_eq!(metrics.nano_cpus, Some(250_000_000));
        let web = &out.get("web").unwrap().create.host_config;
        assert_eq!((web.memory, web.nano_cpus), (None, None));
    }

    #[test]
    fn cgroup_parent_from_owner_template_or_platform() {
        // No platform default, no own: none.
        let out = expand(TEMPLATES, "web:\n  sidecars: {metrics: }\n");
        assert_eq!(
            out.get("web-metrics")
                .unwrap()
                .create
                .host_config
                .cgroup_parent,
            None
        );
        // The owner's reaches its sidecars; a template's own wins.
        let out = expand(
            TEMPLATES,
            "web:\n  docker: {cgroup_parent: web.slice}\n  sidecars: {metrics: , proxy: }\n",
        );
        let cgroup = |n: &str| out.get(n).unwrap().create.host_config.cgroup_parent.clone();
        assert_eq!(cgroup("web").as_deref(), Some("web.slice"));
        assert_eq!(cgroup("web-metrics").as_deref(), Some("web.slice"));
        assert_eq!(cgroup("web-proxy").as_deref(), Some("proxies.slice"));
        // The platform default, templated with the serviceset's name, for every container.
        let platform = format!(
            "defaults: {{cgroup_parent: \"telefig-{{{{serviceset}}}}.slice\"}}\n{TEMPLATES}"
        );
        let out = expand(&platform, "web:\n  sidecars: {metrics: }\napi: {}\n");
        for c in &out.containers {
            assert_eq!(
                c.create.host_config.cgroup_parent.as_deref(),
                Some("telefig-shop.slice"),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn platform_logging_and_own_logging() {
        let platform = format!(
            "defaults: {{logging: {{driver: local, options: {{max-size: 20m}}}}}}\n{TEMPLATES}"
        );
        let out = expand(
            &platform,
            "web:\n  docker: {logging: {driver: json-file, options: {max-size: 1g, max-file: 2}}}\n  sidecars: {metrics: }\n",
        );
        let log = |n: &str| {
            out.get(n)
                .unwrap()
                .create
                .host_config
                .log_config
                .clone()
                .unwrap()
        };
        assert_eq!(log("web-metrics").driver, "local");
        assert_eq!(log("web-metrics").options["max-size"], "20m");
        assert_eq!(log("web").driver, "json-file");
        assert_eq!(log("web").options["max-size"], "1g");
        assert_eq!(log("web").options["max-file"], "2");
    }

    #[test]
    fn unknown_logging_field_is_an_error() {
        let vars = crate::serviceset::Vars::new([("BUILD_COMMIT".into(), "c1".into())], []);
        let err = crate::serviceset::parse(
            std::path::Path::new("s.conf"),
            "web:\n  docker: {logging: {drivr: local}}\n",
            &vars,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("did you mean `driver`"), "{err}");
    }
}
