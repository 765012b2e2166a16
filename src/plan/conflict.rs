//! Who may hold a name this serviceset wants, and what to do when Docker
//! answers a create with "name taken" (409).
//!
//! The plan refuses up front a name held by a container telefig did not
//! create, or by another serviceset's ([`check_holder`]). A 409 at create
//! means the name was taken after the plan looked: a create whose answer
//! was lost (Docker made the container, telefig never heard), or a racing
//! caller. The executor looks up the holder and carries out what
//! [`name_conflict`] decides (SPEC §7: keep it when its config hash
//! matches, else replace it; never touch a container that is not ours).

use super::{Error, Observed, short};
use crate::platform::ContainerSpec;

/// What the executor does about a name Docker says is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameConflict {
    /// This serviceset's own, with the wanted config: it is the container
    /// being created (an answer lost). Keep it, and go on with its id.
    Adopt { id: String },
    /// This serviceset's own, with another config: remove it, create again.
    Replace { id: String },
    /// No container holds the name any more: Docker's answer stands, and a
    /// fresh plan looks again.
    Gone,
    /// Not this serviceset's: never touched.
    Refuse(Error),
}

/// `holder`: the container Docker has under `spec`'s name now, if any.
pub fn name_conflict(
    serviceset: &str,
    spec: &ContainerSpec,
    holder: Option<&Observed>,
) -> NameConflict {
    let Some(h) = holder else {
        return NameConflict::Gone;
    };
    if let Err(refused) = check_holder(serviceset, &spec.name, h) {
        return NameConflict::Refuse(refused);
    }
    if h.config_hash() == Some(spec.config_hash.as_str()) {
        NameConflict::Adopt { id: h.id.clone() }
    } else {
        NameConflict::Replace { id: h.id.clone() }
    }
}

/// A name `serviceset` wants may be held only by its own container.
pub(super) fn check_holder(serviceset: &str, name: &str, holder: &Observed) -> Result<(), Error> {
    match holder.serviceset() {
        None => Err(Error::NameTakenByForeign {
            name: name.into(),
            id: short(&holder.id),
        }),
        Some(s) if s != serviceset => Err(Error::NameTakenByOther {
            name: name.into(),
            owner: s.into(),
            id: short(&holder.id),
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::RunState;
    use crate::platform::{LABEL_CONFIG_HASH, LABEL_SERVICESET};

    fn spec() -> ContainerSpec {
        serde_json::from_value(serde_json::json!({
            "name": "web",
            "role": {"role": "main"},
            "image": {"reference": "web:1", "sources": []},
            "depends_on": [],
            "health": null,
            "stop_grace": {"secs": 10, "nanos": 0},
            "config_hash": "h1",
            "create": {
                "Image": "web:1", "Env": [], "Labels": {}, "StopTimeout": 10,
                "HostConfig": {"NetworkMode": "host", "RestartPolicy": {"Name": "unless-stopped"}}
            }
        }))
        .unwrap()
    }

    fn holder(labels: &[(&str, &str)], state: RunState) -> Observed {
        Observed {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            image: "web:1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            state,
            health: None,
            exit_code: None,
            updatable: None,
        }
    }

    /// Each holder Docker may report under the name, and the decision.
    #[test]
    fn a_taken_name_is_adopted_replaced_refused_or_looked_at_again() {
        let ours = |hash| [(LABEL_SERVICESET, "shop"), (LABEL_CONFIG_HASH, hash)];
        let id = || "0123456789abcdef".to_owned();
        let cases = [
            (None, NameConflict::Gone),
            (
                Some(holder(&ours("h1"), RunState::Created)),
                NameConflict::Adopt { id: id() },
            ),
            (
                Some(holder(&ours("h1"), RunState::Running)),
                NameConflict::Adopt { id: id() },
            ),
            (
                Some(holder(&ours("h0"), RunState::Running)),
                NameConflict::Replace { id: id() },
            ),
            (
                Some(holder(&[(LABEL_SERVICESET, "shop")], RunState::Exited)),
                NameConflict::Replace { id: id() },
            ),
            (
                Some(holder(&[], RunState::Running)),
                NameConflict::Refuse(Error::NameTakenByForeign {
                    name: "web".into(),
                    id: "0123456789ab".into(),
                }),
            ),
            (
                Some(holder(&[(LABEL_SERVICESET, "cart")], RunState::Running)),
                NameConflict::Refuse(Error::NameTakenByOther {
                    name: "web".into(),
                    owner: "cart".into(),
                    id: "0123456789ab".into(),
                }),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(name_conflict("shop", &spec(), h.as_ref()), want, "{h:?}");
        }
    }
}
