//! The `cron:` sidecar as written: as in real serviceset files, a map keyed
//! by job name (`{Nightly: {schedule, command, user}}`); telefig also takes a
//! list of entries that carry their own `name`. Schedules and commands are
//! checked by `platform`, which turns entries into jobs for the daemon.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::schema::Words;
use crate::yaml::{KeyString, Keys};

/// One scheduled command, run on the host by `telefig daemon`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CronEntry {
    /// The job's name: the map key, or `name:` in the list form.
    pub name: Option<String>,
    /// Five cron fields (six with seconds), `@hourly`-style, or `@every 30s`.
    pub schedule: String,
    /// A string is shell syntax run through `/bin/sh -c`; a list is argv.
    pub command: Words,
    /// The host user it runs as (as cron does).
    pub user: Option<String>,
    /// The IANA time zone the schedule is read in (default: the host's).
    #[serde(alias = "timezone")]
    pub tz: Option<String>,
}

/// The entries of one `cron:` sidecar, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CronEntries(pub Vec<CronEntry>);

impl<'de> Deserialize<'de> for CronEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = CronEntries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of job names to {schedule, command, user}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CronEntries::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = seq.next_element::<CronEntry>()? {
                    out.push(entry);
                }
                Ok(CronEntries(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<CronEntry> = Vec::new();
                let mut seen = Keys::default();
                while let Some(KeyString(name)) = map.next_key()? {
                    if !seen.insert(&name) {
                        return Err(de::Error::custom(format!("duplicate cron job `{name}`")));
                    }
                    let mut entry: CronEntry = map.next_value()?;
                    match &entry.name {
                        Some(inner) if *inner != name => {
                            return Err(de::Error::custom(format!(
                                "cron job `{name}` also says `name: {inner}`; the key is its name, drop `name:`"
                            )));
                        }
                        _ => entry.name = Some(name),
                    }
                    out.push(entry);
                }
                Ok(CronEntries(out))
            }
        }
        deserializer.deserialize_any(EntriesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_form_keyed_by_job_name() {
        let text = r#"
VtctldPeriodicMonitoring:
  schedule: "6,36 * * * *"
  command: 'docker exec -i vtctld bash -c "/vt/scripts/cron.sh" 2>&1'
  user: root
Rotate: {schedule: "@hourly", command: /usr/sbin/logrotate /etc/logrotate.d/x 2>&1, user: nobody, timezone: Europe/Paris}
"#;
        let entries: CronEntries = crate::yaml::from_str(text).unwrap();
        let names: Vec<_> = entries.0.iter().map(|e| e.name.as_deref()).collect();
        assert_eq!(names, [Some("VtctldPeriodicMonitoring"), Some("Rotate")]);
        assert_eq!(
            entries.0[0].command,
            Words::Line(r#"docker exec -i vtctld bash -c "/vt/scripts/cron.sh" 2>&1"#.into())
        );
        assert_eq!(entries.0[1].tz.as_deref(), Some("Europe/Paris"));
    }

    #[test]
    fn list_form_and_bad_shapes() {
        let list: CronEntries =
            crate::yaml::from_str("- {name: a, schedule: '@daily', command: [true]}").unwrap();
        assert_eq!(list.0[0].name.as_deref(), Some("a"));
        for bad in [
            "a: {schedule: '@daily'}",
            "a: {schedule: '@daily', command: x, usr: root}",
            "a: {name: b, schedule: '@daily', command: x}",
        ] {
            assert!(crate::yaml::from_str::<CronEntries>(bad).is_err(), "{bad}");
        }
    }
}
