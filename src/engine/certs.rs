//! What Docker trusts for one registry beyond the host's roots:
//! `/etc/docker/certs.d/<host[:port]>/` holds its CAs (`*.crt`) and a
//! client certificate (`*.cert`, with the key of the same name, `*.key`).
//! The size lookup before a pull (`manifest`) reads the same files, so a
//! registry with a private CA that `docker pull` trusts answers it too.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

/// Where Docker reads them.
pub const CERTS_DIR: &str = "/etc/docker/certs.d";

/// The files of `<certs_dir>/<host>/`, parsed.
#[derive(Default)]
pub struct RegistryTrust {
    /// Where they were read from.
    pub dir: PathBuf,
    /// Its CAs (`*.crt`), trusted besides the host's roots.
    pub cas: Vec<Certificate<'static>>,
    /// Its client certificate and key (`*.cert` + `*.key`).
    pub client: Option<ClientCert>,
}

impl RegistryTrust {
    /// Read `<certs_dir>/<host>/`; nothing to add when it does not exist.
    /// A file Docker would read but that is not what its name says is an
    /// error, as it is for Docker.
    pub fn read(certs_dir: &Path, host: &str) -> Result<RegistryTrust, String> {
        let dir = certs_dir.join(host);
        let mut trust = RegistryTrust {
            dir: dir.clone(),
            ..RegistryTrust::default()
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(trust),
            Err(e) => return Err(format!("cannot read {} ({e})", dir.display())),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in &names {
            let path = dir.join(name);
            if name.ends_with(".crt") {
                trust.cas.extend(certificates(&path)?);
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key = format!("{stem}.key");
                if !names.contains(&key) {
                    return Err(format!(
                        "{} has no key: {} is missing (Docker refuses this directory too)",
                        path.display(),
                        dir.join(&key).display()
                    ));
                }
                if trust.client.is_some() {
                    continue; // Docker presents the first one as well
                }
                let chain = certificates(&path)?;
                let key = private_key(&dir.join(&key))?;
                trust.client = Some(ClientCert::new_with_certs(&chain, key));
            } else if let Some(stem) = name.strip_suffix(".key")
                && !names.contains(&format!("{stem}.cert"))
            {
                return Err(format!(
                    "{} has no certificate: {} is missing (Docker refuses this directory too)",
                    path.display(),
                    dir.join(format!("{stem}.cert")).display()
                ));
            }
        }
        Ok(trust)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {} ({e})", path.display()))
}

/// The PEM certificates in `path`: at least one.
fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = read(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{} is not PEM ({e})", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The PEM private key in `path`.
fn private_key(path: &Path) -> Result<PrivateKey<'static>, String> {
    let pem = read(path)?;
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::PrivateKey(k)) => return Ok(k),
            Ok(_) => {}
            Err(e) => return Err(format!("{} is not PEM ({e})", path.display())),
        }
    }
    Err(format!("{} holds no PEM private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "telefig-certs-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join("reg:5000")).unwrap();
        dir
    }

    #[test]
    fn no_directory_for_the_host_adds_nothing() {
        let dir = scratch("none");
        let trust = RegistryTrust::read(&dir, "other:5000").unwrap();
        assert!(trust.cas.is_empty() && trust.client.is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_that_are_not_what_their_names_say_are_errors_naming_them() {
        let dir = scratch("bad");
        let host = dir.join("reg:5000");
        std::fs::write(host.join("ca.crt"), "not a certificate").unwrap();
        let err = RegistryTrust::read(&dir, "reg:5000").err().unwrap();
        assert!(
            err.contains("ca.crt") && err.contains("no PEM certificate"),
            "{err}"
        );
        std::fs::remove_file(host.join("ca.crt")).unwrap();
        std::fs::write(host.join("client.key"), "").unwrap();
        let err = RegistryTrust::read(&dir, "reg:5000").err().unwrap();
        assert!(err.contains("client.cert is missing"), "{err}");
        std::fs::remove_file(host.join("client.key")).unwrap();
        std::fs::write(host.join("client.cert"), "").unwrap();
        let err = RegistryTrust::read(&dir, "reg:5000").err().unwrap();
        assert!(err.contains("client.key is missing"), "{err}");
        // Other files are not Docker's: ignored.
        std::fs::remove_file(host.join("client.cert")).unwrap();
        std::fs::write(host.join("README"), "notes").unwrap();
        assert!(
            RegistryTrust::read(&dir, "reg:5000")
                .unwrap()
                .cas
                .is_empty()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
