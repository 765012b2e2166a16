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
use telefig::engine::manifest::{SizeUnknown, layers_trusting};

/// `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 it signed: (ca.crt,
/// server.crt, server.key) in `dir`.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=telefig test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
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
