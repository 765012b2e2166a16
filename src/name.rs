//! A serviceset's name, validated once: the only way to get a
//! [`ServicesetName`] is through [`ServicesetName::parse`], and the state dir
//! takes nothing else, so no name can reach outside it (`../x`, `a/b`).
//!
//! The rule is Docker's container-name rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`:
//! the name becomes a label value, a file name and a container-name prefix.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "serviceset name `{0}` is not usable: it names files and labels, so use letters, digits, `_`, `.` and `-`, starting with a letter or digit (pass --name NAME)"
)]
pub struct NameError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServicesetName(String);

impl ServicesetName {
    pub fn parse(text: &str) -> Result<ServicesetName, NameError> {
        let mut chars = text.chars();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if valid {
            Ok(ServicesetName(text.to_owned()))
        } else {
            Err(NameError(text.escape_debug().to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServicesetName {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        ServicesetName::parse(&text)
    }
}

impl From<ServicesetName> for String {
    fn from(name: ServicesetName) -> String {
        name.0
    }
}

impl Deref for ServicesetName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServicesetName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_name_rule() {
        for good in ["a", "web", "serviceset.prod", "a_b-c.9", "9lives"] {
            assert!(ServicesetName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../escape",
            "a/b",
            "/etc",
            "-x",
            "_x",
            ".x",
            "x y",
            "x\0",
            "é",
        ] {
            let err = ServicesetName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("serviceset name"), "{err}");
        }
    }

    #[test]
    fn a_record_with_a_bad_name_does_not_deserialize() {
        assert!(serde_json::from_str::<ServicesetName>("\"../x\"").is_err());
        assert_eq!(
            serde_json::from_str::<ServicesetName>("\"web\"")
                .unwrap()
                .as_str(),
            "web"
        );
    }
}
