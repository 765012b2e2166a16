//! The size lookup before a pull trusts a private registry's CA where
//! Docker does: `<certs.d>/<host:port>/*.crt`. A real `docker-registry`
//! serves HTTPS on 127.0.0.1 with a certificate signed by a CA this test
//! makes (openssl); the lookup succeeds with that CA in the injected
//! certs.d directory, and fails — saying where the CA belongs — without it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;
use telefig::registry::manifest::{SizeUnknown, layers_trusting};

/// `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| missing(&format!("openssl ({e}; Debian's openssl)")));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA: `<name>.crt` and `<name>.key` in `dir`; the path of the first.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN=telefig test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(crt)
}

/// `<name>.crt` in `dir`, for the key already in `<name>.key`, signed by
/// the CA `ca` (made by [`make_ca`]) with the X.509 extensions `ext`.
fn sign(dir: &Path, ca: &str, name: &str, ext: &str) -> PathBuf {
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    dir.join(crt)
}

/// A CA, and a server certificate for 127.0.0.1 it signed: (ca.crt,
/// server.crt, server.key) in `dir`.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = make_ca(dir, "ca");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "server.key",
        ],
    );
    let cert = sign(
        dir,
        "ca",
        "server",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    );
    (ca, cert, dir.join("server.key"))
}

/// A client certificate the CA `ca` signs, its key made by `openssl
/// keygen` (then written as PEM the way Docker users find them): the
/// paths of `<name>.crt` and `<name>.key` in `dir`.
fn make_client(dir: &Path, ca: &str, name: &str, keygen: &[&str]) -> (PathBuf, PathBuf) {
    let key = format!("{name}.key");
    let mut args = vec![keygen[0], "-out", &key];
    args.extend(&keygen[1..]);
    openssl(dir, &args);
    let cert = sign(
        dir,
        ca,
        name,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    (cert, dir.join(key))
}

fn lookup(
    reference: &str,
    certs_dir: &Path,
) -> Result<Vec<telefig::plan::space::Layer>, SizeUnknown> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    runtime.block_on(layers_trusting(reference, until, certs_dir))
}

#[test]
fn the_size_lookup_trusts_the_ca_docker_trusts_for_the_registry() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let dir = scratch_dir("certs");
    let (ca, cert, key) = make_certs(&dir);
    let registry = Registry::start_tls(&cert, &key);
    let reference = registry.push_as(&busybox_image("1"), &format!("certs/{}:v1", guard.id()));
    untag(&reference);

    // Without the CA: refused, and the error says where the CA belongs.
    let empty = dir.join("certs.d-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = lookup(&reference, &empty).expect_err("an unknown CA is not trusted");
    let why = err.to_string();
    let host_dir = empty.join(&registry.addr);
    assert!(
        why.contains(&format!("{}/ca.crt", host_dir.display())) && why.contains("private CA"),
        "{why}"
    );

    // With it, where Docker would read it: the layers and their sizes.
    let certs_d = dir.join("certs.d");
    let host = certs_d.join(&registry.addr);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::copy(&ca, host.join("ca.crt")).unwrap();
    let layers = lookup(&reference, &certs_d).unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
    assert!(!layers.is_empty(), "{reference} has layers");
    assert!(layers.iter().all(|l| l.size > 0), "{layers:?}");

    // Another host's CA is not this one's.
    let elsewhere = dir.join("certs.d-elsewhere");
    std::fs::create_dir_all(elsewhere.join("127.0.0.1:1")).unwrap();
    std::fs::copy(&ca, elsewhere.join("127.0.0.1:1/ca.crt")).unwrap();
    assert!(lookup(&reference, &elsewhere).is_err());

    let _ = std::fs::remove_dir_all(&dir);
}

/// A registry that demands a client certificate signed by `client-ca`,
/// serving one pushed image, and the certs.d layout Docker reads for it.
struct Mtls {
    _guard: Cleanup,
    dir: PathBuf,
    /// The registry the image was pushed to (it holds the storage).
    _pushed_to: Registry,
    registry: Registry,
    reference: String,
}

impl Mtls {
    fn start(what: &str) -> Mtls {
        let guard = Cleanup::new();
        let dir = scratch_dir(what);
        let (_, cert, key) = make_certs(&dir);
        let client_ca = make_ca(&dir, "client-ca");
        let pushed_to = Registry::start_tls(&cert, &key);
        let path = format!("mtls/{}:v1", guard.id());
        untag(&pushed_to.push_as(&busybox_image("1"), &path));
        let registry =
            Registry::start_tls_requiring_client_cert(&cert, &key, &client_ca, &pushed_to);
        let reference = registry.reference(&path);
        Mtls {
            _guard: guard,
            dir,
            _pushed_to: pushed_to,
            registry,
            reference,
        }
    }

    /// A certs.d dir named `name` with the registry's CA and, for its
    /// host:port, these files (name, source).
    fn certs_d(&self, name: &str, files: &[(&str, &Path)]) -> PathBuf {
        let certs_d = self.dir.join(name);
        let host = certs_d.join(&self.registry.addr);
        std::fs::create_dir_all(&host).unwrap();
        std::fs::copy(self.dir.join("ca.crt"), host.join("ca.crt")).unwrap();
        for (file, source) in files {
            std::fs::copy(source, host.join(file)).unwrap();
        }
        certs_d
    }

    /// Wait until the registry's log tells why it refused a handshake.
    fn assert_refused(&self, why: &str) {
        assert!(
            wait_until(Duration::from_secs(10), || self
                .registry
                .log()
                .contains(why)),
            "the registry did not log {why:?}:\n{}",
            self.registry.log()
        );
    }
}

impl Drop for Mtls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The key formats Docker takes (Go's `tls.X509KeyPair`), as `openssl`
/// writes them: (what, the command that makes the key).
const CLIENT_KEYS: &[(&str, &[&str])] = &[
    (
        "RSA, PKCS#8 (BEGIN PRIVATE KEY)",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    ),
    (
        "RSA, PKCS#1 (BEGIN RSA PRIVATE KEY)",
        &["genrsa", "-traditional", "2048"],
    ),
    (
        "EC P-256, SEC1 after EC PARAMETERS (BEGIN EC PRIVATE KEY)",
        &["ecparam", "-name", "prime256v1", "-genkey"],
    ),
    (
        "EC P-384, PKCS#8",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
    ),
    ("Ed25519, PKCS#8", &["genpkey", "-algorithm", "ed25519"]),
];

#[test]
fn the_size_lookup_presents_the_client_certificate_docker_would() {
    if !require_docker() {
        return;
    }
    let mtls = Mtls::start("mtls-ok");
    for (i, (what, keygen)) in CLIENT_KEYS.iter().enumerate() {
        let (cert, key) = make_client(&mtls.dir, "client-ca", &format!("client{i}"), keygen);
        let certs_d = mtls.certs_d(
            &format!("certs.d-{i}"),
            &[("client.cert", &cert), ("client.key", &key)],
        );
        let layers = lookup(&mtls.reference, &certs_d)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", mtls.registry.log()));
        assert!(
            !layers.is_empty() && layers.iter().all(|l| l.size > 0),
            "{what}: {layers:?}"
        );
    }
}

/// `why` names these and holds no PEM (no key material).
fn assert_says(why: &str, parts: &[&str]) {
    for part in parts {
        assert!(why.contains(part), "missing {part:?} in: {why}");
    }
    assert!(!why.contains("BEGIN") && !why.contains("panicked"), "{why}");
}

#[test]
fn without_a_client_certificate_the_error_says_where_docker_reads_one() {
    if !require_docker() {
        return;
    }
    let mtls = Mtls::start("mtls-none");
    let certs_d = mtls.certs_d("certs.d", &[]);
    let why = lookup(&mtls.reference, &certs_d)
        .expect_err("the registry demands a client certificate")
        .to_string();
    let host_dir = certs_d.join(&mtls.registry.addr);
    assert_says(
        &why,
        &[
            &format!("from {}", mtls.registry.addr),
            "asks for a client certificate",
            &format!("{} holds none", host_dir.display()),
            "client.cert",
            "client.key",
        ],
    );
    // Go's server, on the handshake it refused.
    mtls.assert_refused("client didn't provide a certificate");
}

#[test]
fn a_client_certificate_another_ca_signed_is_refused_saying_so() {
    if !require_docker() {
        return;
    }
    let mtls = Mtls::start("mtls-other");
    make_ca(&mtls.dir, "other-ca");
    let (cert, key) = make_client(&mtls.dir, "other-ca", "stranger", CLIENT_KEYS[0].1);
    let certs_d = mtls.certs_d("certs.d", &[("client.cert", &cert), ("client.key", &key)]);
    let why = lookup(&mtls.reference, &certs_d)
        .expect_err("the registry trusts only client-ca")
        .to_string();
    let host_dir = certs_d.join(&mtls.registry.addr);
    assert_says(
        &why,
        &[
            &format!("from {}", mtls.registry.addr),
            &format!(
                "refused the client certificate {}",
                host_dir.join("client.cert").display()
            ),
            "signed by a CA the registry trusts for clients",
            &host_dir.join("client.key").display().to_string(),
        ],
    );
    // It was presented, and refused for its CA.
    mtls.assert_refused(
        "failed to verify client certificate: x509: certificate signed by unknown authority",
    );
}

/// Regression: a key that is not the certificate's, or one the TLS client
/// cannot sign with (EC P-521, which Docker takes), made the lookup panic
/// in its first request ("valid client auth certificate: …").
#[test]
fn a_client_key_the_handshake_cannot_use_is_an_error_naming_it() {
    if !require_docker() {
        return;
    }
    let mtls = Mtls::start("mtls-badkey");
    let (cert, _) = make_client(&mtls.dir, "client-ca", "mine", CLIENT_KEYS[0].1);
    let (_, other_key) = make_client(&mtls.dir, "client-ca", "theirs", CLIENT_KEYS[0].1);
    let certs_d = mtls.certs_d(
        "certs.d-mismatch",
        &[("client.cert", &cert), ("client.key", &other_key)],
    );
    let host_dir = certs_d.join(&mtls.registry.addr);
    let why = lookup(&mtls.reference, &certs_d)
        .expect_err("a key that is not the certificate's")
        .to_string();
    assert_says(
        &why,
        &[
            &format!(
                "the key {} is not the key of the certificate {}",
                host_dir.join("client.key").display(),
                host_dir.join("client.cert").display()
            ),
            "put the key the certificate was made for there",
        ],
    );

    let p521 = &[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-521",
    ];
    let (cert, key) = make_client(&mtls.dir, "client-ca", "p521", p521);
    let certs_d = mtls.certs_d(
        "certs.d-p521",
        &[("client.cert", &cert), ("client.key", &key)],
    );
    let host_dir = certs_d.join(&mtls.registry.addr);
    let why = lookup(&mtls.reference, &certs_d)
        .expect_err("ring signs no P-521")
        .to_string();
    assert_says(
        &why,
        &[
            &format!(
                "the key {} cannot sign a TLS handshake here",
                host_dir.join("client.key").display()
            ),
            "RSA, ECDSA P-256/P-384 and Ed25519",
        ],
    );
}
