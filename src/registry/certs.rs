//! What Docker trusts for one registry beyond the host's roots:
//! `/etc/docker/certs.d/<host[:port]>/` holds its CAs (`*.crt`) and a
//! client certificate (`*.cert`, with the key of the same name, `*.key`).
//! The size lookup before a pull (`manifest`) reads the same files, so a
//! registry with a private CA that `docker pull` trusts answers it too, and
//! says which of these files to fix when the registry's handshake fails.
//! Speaking to the registry is `manifest`'s.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

/// Where Docker reads them.
pub const CERTS_DIR: &str = "/etc/docker/certs.d";

/// A file in a registry's certs.d directory that cannot be used as its
/// name says (Docker refuses the directory too). Names files, never their
/// contents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path} ({source}); make it readable by telefig or remove it")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not PEM ({why}); write it as PEM or remove it")]
    NotPem { path: PathBuf, why: String },
    #[error("{path} holds no PEM certificate; put the PEM certificate there or remove it")]
    NoCertificate { path: PathBuf },
    #[error(
        "{path} holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); \
         put the client certificate's unencrypted key there"
    )]
    NoKey { path: PathBuf },
    #[error(
        "{cert} has no key: {key} is missing; put its key there or remove it \
         (Docker refuses this directory too)"
    )]
    CertWithoutKey { cert: PathBuf, key: PathBuf },
    #[error(
        "{key} has no certificate: {cert} is missing; put it there or remove the key \
         (Docker refuses this directory too)"
    )]
    KeyWithoutCert { key: PathBuf, cert: PathBuf },
    #[error(
        "the key {key} is not the key of the certificate {cert}; put the key the \
         certificate was made for there (Docker refuses this pair too)"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "the key {key} cannot sign a TLS handshake here ({why}); telefig takes RSA, \
         ECDSA P-256/P-384 and Ed25519 keys: use one of those for this registry's \
         client certificate {cert}"
    )]
    KeyUnusable {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
}

/// The client certificate files in use, to name them when refused.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files of `<certs_dir>/<host>/`, parsed.
#[derive(Default)]
pub struct RegistryTrust {
    /// Where they were read from.
    pub dir: PathBuf,
    /// Its CAs (`*.crt`), trusted besides the host's roots.
    pub cas: Vec<Certificate<'static>>,
    /// Its client certificate and key (`*.cert` + `*.key`).
    pub client: Option<ClientCert>,
    /// Which files those are.
    pub client_files: Option<ClientFiles>,
}

/// Why a registry's TLS handshake failed, as far as its certs.d files
/// tell: what to put where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the registry asks for a client certificate and {dir} holds none; put the \
         certificate Docker uses for this registry there as client.cert and its key as \
         client.key"
    )]
    NoClientCert { dir: PathBuf },
    #[error(
        "the registry refused the client certificate {cert}: it must be signed by a CA the \
         registry trusts for clients and be valid now; replace it and its key {key}"
    )]
    ClientCertRefused { cert: PathBuf, key: PathBuf },
    #[error(
        "if the registry uses a private CA, put it in {}, where Docker reads it too",
        dir.join("ca.crt").display()
    )]
    UnknownServerCa { dir: PathBuf },
    #[error(
        "its certificate is refused even trusting the CA(s) in {dir}; check that one of them \
         signed it and that it names this host"
    )]
    ServerCertRefused { dir: PathBuf },
}

/// The TLS implementation the size lookup speaks with: the key checks here
/// are the ones its handshake makes.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl RegistryTrust {
    /// Read `<certs_dir>/<host>/`; nothing to add when it does not exist.
    /// A file Docker would read but that is not what its name says is an
    /// error, as it is for Docker.
    pub fn read(certs_dir: &Path, host: &str) -> Result<RegistryTrust, Error> {
        let dir = certs_dir.join(host);
        let mut trust = RegistryTrust {
            dir: dir.clone(),
            ..RegistryTrust::default()
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(trust),
            Err(source) => return Err(Error::Unreadable { path: dir, source }),
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
                let key = dir.join(format!("{stem}.key"));
                if !names.contains(&format!("{stem}.key")) {
                    return Err(Error::CertWithoutKey { cert: path, key });
                }
                if trust.client.is_some() {
                    continue; // Docker presents the first one as well
                }
                trust.client = Some(client_cert(&path, &key)?);
                trust.client_files = Some(ClientFiles { cert: path, key });
            } else if let Some(stem) = name.strip_suffix(".key")
                && !names.contains(&format!("{stem}.cert"))
            {
                let cert = dir.join(format!("{stem}.cert"));
                return Err(Error::KeyWithoutCert { key: path, cert });
            }
        }
        Ok(trust)
    }

    /// What the failed HTTPS request `e` to this registry means for its
    /// certs.d files, if it is about a certificate.
    pub fn explain(&self, e: &ureq::Error) -> Option<Refusal> {
        let tls = match e {
            ureq::Error::Rustls(e) => e,
            ureq::Error::Io(e) => e.get_ref()?.downcast_ref::<rustls::Error>()?,
            _ => return None,
        };
        explain(
            tls,
            &self.dir,
            self.client_files.as_ref(),
            !self.cas.is_empty(),
        )
    }
}

/// [`RegistryTrust::explain`] for the TLS error `e`.
fn explain(
    e: &rustls::Error,
    dir: &Path,
    client: Option<&ClientFiles>,
    private_ca: bool,
) -> Option<Refusal> {
    use rustls::AlertDescription as Alert;
    match e {
        // The registry's verdict on what we sent: only a client certificate.
        rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::CertificateRequired
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::AccessDenied,
        ) => Some(match client {
            None => Refusal::NoClientCert {
                dir: dir.to_owned(),
            },
            Some(files) => Refusal::ClientCertRefused {
                cert: files.cert.clone(),
                key: files.key.clone(),
            },
        }),
        // Ours on the registry's certificate.
        rustls::Error::InvalidCertificate(_) if private_ca => Some(Refusal::ServerCertRefused {
            dir: dir.to_owned(),
        }),
        rustls::Error::InvalidCertificate(_) => Some(Refusal::UnknownServerCa {
            dir: dir.to_owned(),
        }),
        _ => None,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    crate::read::bytes(path, crate::read::SMALL_CAP).map_err(|source| Error::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// The PEM certificates in `path`: at least one.
fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let pem = read(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::NotPem {
                    path: path.to_owned(),
                    why: e.to_string(),
                });
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The certificate chain in `cert` with the PEM private key in `key`,
/// checked as the handshake will use them (the key is one the TLS
/// implementation signs with, and the certificate's), so that a bad pair
/// is this error and not a failure deep in the first request.
fn client_cert(cert: &Path, key: &Path) -> Result<ClientCert, Error> {
    let chain = certificates(cert)?;
    let pem = read(key)?;
    let parsed = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => Error::NoKey {
            path: key.to_owned(),
        },
        other => Error::NotPem {
            path: key.to_owned(),
            why: other.to_string(),
        },
    })?;
    let ders = chain
        .iter()
        .map(|c| CertificateDer::from(c.der()).into_owned())
        .collect();
    CertifiedKey::from_der(ders, parsed, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => Error::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        },
        other => Error::KeyUnusable {
            cert: cert.to_owned(),
            key: key.to_owned(),
            why: other.to_string(),
        },
    })?;
    Ok(ClientCert::new_with_certs(&chain, private_key(key, &pem)?))
}

/// The PEM private key `pem`, read from `path`, as the TLS client takes it.
fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKey<'static>, Error> {
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::PrivateKey(k)) => return Ok(k),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::NotPem {
                    path: path.to_owned(),
                    why: e.to_string(),
                });
            }
        }
    }
    Err(Error::NoKey {
        path: path.to_owned(),
    })
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
        let err = RegistryTrust::read(&dir, "reg:5000")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("ca.crt") && err.contains("no PEM certificate"),
            "{err}"
        );
        std::fs::remove_file(host.join("ca.crt")).unwrap();
        std::fs::write(host.join("client.key"), "").unwrap();
        let err = RegistryTrust::read(&dir, "reg:5000")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("client.cert is missing"), "{err}");
        std::fs::remove_file(host.join("client.key")).unwrap();
        std::fs::write(host.join("client.cert"), "").unwrap();
        let err = RegistryTrust::read(&dir, "reg:5000")
            .err()
            .unwrap()
            .to_string();
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

    #[test]
    fn a_refused_handshake_names_the_file_to_fix() {
        use rustls::AlertDescription as Alert;
        use rustls::CertificateError;
        let dir = Path::new("/certs.d/reg:5000");
        let files = ClientFiles {
            cert: dir.join("client.cert"),
            key: dir.join("client.key"),
        };
        let no_cert = Refusal::NoClientCert {
            dir: dir.to_owned(),
        };
        let refused = Refusal::ClientCertRefused {
            cert: files.cert.clone(),
            key: files.key.clone(),
        };
        let unknown_ca = Refusal::UnknownServerCa {
            dir: dir.to_owned(),
        };
        let server_refused = Refusal::ServerCertRefused {
            dir: dir.to_owned(),
        };
        let bad_server = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let cases: [(rustls::Error, Option<&ClientFiles>, bool, Option<Refusal>); 7] = [
            (
                rustls::Error::AlertReceived(Alert::CertificateRequired),
                None,
                false,
                Some(no_cert),
            ),
            (
                rustls::Error::AlertReceived(Alert::BadCertificate),
                Some(&files),
                true,
                Some(refused),
            ),
            (bad_server.clone(), None, false, Some(unknown_ca)),
            (bad_server, Some(&files), true, Some(server_refused)),
            // Not about a certificate: nothing to say.
            (
                rustls::Error::AlertReceived(Alert::HandshakeFailure),
                Some(&files),
                true,
                None,
            ),
            (
                rustls::Error::AlertReceived(Alert::ProtocolVersion),
                None,
                false,
                None,
            ),
            (rustls::Error::DecryptError, None, false, None),
        ];
        for (error, client, private_ca, want) in cases {
            assert_eq!(explain(&error, dir, client, private_ca), want, "{error}");
        }
        let text = Refusal::NoClientCert {
            dir: dir.to_owned(),
        }
        .to_string();
        assert!(
            text.contains("/certs.d/reg:5000 holds none")
                && text.contains("client.cert")
                && text.contains("client.key"),
            "{text}"
        );
    }
}
