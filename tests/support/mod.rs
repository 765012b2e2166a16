//! Fixtures shared by the integration tests that touch a Docker Engine.
//!
//! Use it as `mod support;` from a file under `tests/`. The fixtures shell
//! out to the `docker` CLI and to Debian's `docker-registry` binary on
//! purpose: they are independent of the code under test (which speaks to the
//! Engine API through bollard), and they are simple to debug by hand.
//!
//! Everything a test creates carries the label `io.telefig.test` (value: the
//! test's [`run_id`], or `images` for the shared images), so `.ci/run` can
//! remove leftovers without touching anything else on the host.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod events;

/// The label on every container and image a test creates.
pub const TEST_LABEL: &str = "io.telefig.test";

/// The repository of the images [`busybox_image`] builds.
pub const BUSYBOX_REPO: &str = "telefig-test/busybox";

/// Where the rootfs of the test images comes from (Debian's `busybox-static`).
pub const BUSYBOX_BIN: &str = "/bin/busybox";

/// Applets linked in the test image even if `busybox --list` fails.
const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "true", "false", "test", "[", "touch", "rm", "ls", "mkdir",
    "date", "nc", "httpd", "wget", "kill", "env", "id", "ps", "grep", "printf", "tail", "head",
];

// ---------------------------------------------------------------------------
// Docker availability

/// Whether a Docker Engine answers (`docker info`). Checked once per process.
pub fn docker_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        // Bounded: a dockerd that hangs fails the tests with the message
        // below instead of hanging every one of them.
        Command::new("timeout")
            .args(["60", "docker", "info", "--format", "{{.ServerVersion}}"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Fail a test that lacks a tool, saying what is missing and the command
/// that installs it: a test never skips.
pub fn missing(what: &str) -> ! {
    panic!(
        "{what} is missing: run `tests/setup --no-test` (as root), which installs what the tests need"
    )
}

/// `if !require_docker() { return; }` at the top of a Docker test: without an
/// Engine the test fails, saying how to start one. (It returns `true` or
/// panics; the `bool` keeps every caller as it was written.)
pub fn require_docker() -> bool {
    assert!(
        docker_available(),
        "no Docker Engine answers (`docker info` failed or took over 60 s): run `tests/setup --no-test` (as root), which starts dockerd (restart a dockerd that hangs)"
    );
    true
}

// ---------------------------------------------------------------------------
// Identity and cleanup

/// A name unique per test process and call: `t<pid>-<counter>-<nanos>`.
/// Usable as a label value, a serviceset name and a container-name prefix.
pub fn run_id() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t{}-{n}-{nanos}", std::process::id())
}

/// `io.telefig.test=<run_id>`, for `--label`/`--filter` and serviceset `labels`.
pub fn test_label(run_id: &str) -> String {
    format!("{TEST_LABEL}={run_id}")
}

/// The platform file's `labels:` line: every container telefig creates for
/// the run carries its test label.
pub fn platform_labels(run_id: &str) -> String {
    let label = test_label(run_id);
    let (k, v) = label.split_once('=').unwrap();
    format!("labels: {{{k}: \"{v}\"}}\n")
}

/// `dir/serviceset.conf`: one container `<id>-web` of image `<id>/web`,
/// its version the deploy's `V`, that exits at once on SIGTERM.
pub fn write_versioned_web(dir: &Path, id: &str) {
    let text = format!(
        r#"{id}-web:
  docker:
    image: {id}/web
    version: "{{{{V}}}}"
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
"#
    );
    fs::write(dir.join("serviceset.conf"), text).unwrap();
}

/// A serviceset of one main container `name`, image `web`, that runs
/// `script` under `sh -c`, has 5 s to stop, and is healthy while `/ready`
/// exists. [`Web::new`] gives the usual rest; change a field with
/// `Web { field, ..Web::new(name, script) }`.
pub struct Web<'a> {
    pub name: &'a str,
    pub script: &'a str,
    /// `version:` (a template is fine).
    pub version: &'a str,
    /// The healthcheck's settings after its test.
    pub probes: &'a str,
    /// More lines under `docker:` (four spaces in).
    pub docker: &'a str,
    /// More lines beside `docker:` (two spaces in).
    pub beside: &'a str,
    /// One line each under `sidecars:` (`discovery: {port: 8080}`).
    pub sidecars: &'a [&'a str],
}

impl<'a> Web<'a> {
    /// Version v1, probes every 200 ms (1 s timeout, 5 s start period, two
    /// failures make it unhealthy), no sidecars.
    pub fn new(name: &'a str, script: &'a str) -> Web<'a> {
        Web {
            name,
            script,
            version: "v1",
            probes: "interval: 200ms, timeout: 1s, start_period: 5s, retries: 2",
            docker: "",
            beside: "",
            sidecars: &[],
        }
    }

    pub fn text(&self) -> String {
        let Web {
            name,
            script,
            version,
            probes,
            docker,
            beside,
            sidecars,
        } = self;
        let mut text = format!(
            "version: 1\n{name}:\n  docker:\n    image: web\n    version: \"{version}\"\n    \
             command: [\"sh\", \"-c\", \"{script}\"]\n    stop_grace_period: 5s\n    \
             healthcheck: {{test: \"test -e /ready\", {probes}}}\n{docker}{beside}"
        );
        if !sidecars.is_empty() {
            text += "  sidecars:\n";
            for sidecar in *sidecars {
                text += &format!("    {sidecar}\n");
            }
        }
        text
    }

    /// Writes `dir/serviceset.conf`.
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("serviceset.conf"), self.text()).unwrap();
    }
}

/// Force-remove every container labelled `io.telefig.test=<run_id>`, and
/// every container of the serviceset named `<run_id>` (tests use their run id
/// as the serviceset name). Never touches anything else.
pub fn cleanup(run_id: &str) {
    if !docker_available() {
        return;
    }
    let mut ids = container_ids_by_label(&test_label(run_id));
    ids.extend(container_ids_by_label(&format!(
        "telefig.serviceset={run_id}"
    )));
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return;
    }
    let mut args = vec!["rm", "-f", "-v"];
    args.extend(ids.iter().map(String::as_str));
    let out = docker(&args);
    if !out.status.success() {
        eprintln!(
            "warning: cleanup of {run_id}: docker rm failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

/// Calls [`cleanup`] for its run id when dropped (also when the test panics).
pub struct Cleanup(pub String);

impl Cleanup {
    /// A guard for a fresh [`run_id`].
    pub fn new() -> Cleanup {
        Cleanup(run_id())
    }

    pub fn id(&self) -> &str {
        &self.0
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup::new()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The docker CLI

/// Run `docker ARGS` and return its output, whatever the exit status.
pub fn docker<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `docker`: {e}"))
}

/// Run `docker ARGS`, panic with its stderr unless it succeeds; return stdout, trimmed.
pub fn docker_ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = docker(args);
    if !out.status.success() {
        panic!(
            "`docker {}` failed ({}): {}{}",
            show_args(args),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim(),
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn show_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `docker inspect NAME` (container, image, …): the object, or `None` if absent.
pub fn try_inspect(name: &str) -> Option<serde_json::Value> {
    let out = docker(&["inspect", name]);
    if !out.status.success() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`docker inspect {name}` printed no JSON: {e}"));
    match value {
        serde_json::Value::Array(mut items) if !items.is_empty() => Some(items.swap_remove(0)),
        _ => None,
    }
}

/// `docker inspect NAME`: the object; panics if there is none.
pub fn inspect(name: &str) -> serde_json::Value {
    try_inspect(name).unwrap_or_else(|| panic!("`docker inspect {name}`: no such object"))
}

/// Whether a container (or any object) of that name exists.
pub fn exists(name: &str) -> bool {
    try_inspect(name).is_some()
}

/// A container the code under test did not create: `docker run -d
/// --network host --stop-timeout 1 --name NAME` on the busybox image,
/// sleeping, with the test label of `run_id` (for [`cleanup`]) and `labels`
/// (`key=value`). Returns its id.
pub fn run_foreign(run_id: &str, name: &str, labels: &[&str]) -> String {
    let image = busybox_image("1");
    let test = test_label(run_id);
    let mut args = vec![
        "run",
        "-d",
        "--network",
        "host",
        "--stop-timeout",
        "1",
        "--name",
        name,
        "--label",
        &test,
    ];
    for label in labels {
        args.extend(["--label", label]);
    }
    args.extend([image.as_str(), "sleep", "600"]);
    docker_ok(&args)
}

/// Full ids of all containers (running or not) carrying `label` (`key` or `key=value`).
pub fn container_ids_by_label(label: &str) -> Vec<String> {
    let out = docker_ok(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}"),
    ]);
    out.lines().map(str::to_owned).collect()
}

/// Whether a local image exists under this reference.
pub fn image_exists(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).status.success()
}

/// `docker tag SRC DST`.
pub fn retag(src: &str, dst: &str) {
    docker_ok(&["tag", src, dst]);
}

/// `docker rmi REF` (only untags when the image has other references). Ignores absence.
pub fn untag(reference: &str) {
    if image_exists(reference) {
        docker_ok(&["rmi", reference]);
    }
}

/// Run `cmd` to its end, or kill it once `limit` has passed and fail: a
/// test of something that must not hang fails instead of hanging with it.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drained as it runs, so a full pipe cannot stall it.
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    }
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let finished = wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))));
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for the child");
    let out = Output {
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    };
    assert!(
        finished,
        "{cmd:?} did not finish within {limit:?}; killed. stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Poll `check` every 100 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// Test images

/// A local image built from `/bin/busybox` (Debian's `busybox-static`),
/// `telefig-test/busybox:<tag>`, with the usual applets linked, `CMD
/// ["/bin/sh"]` and the label `io.telefig.test=images`. Built once per tag
/// (a file lock keeps parallel test binaries from racing); each tag is a
/// distinct image (it also carries `io.telefig.test.tag=<tag>`). Returns the
/// reference.
pub fn busybox_image(tag: &str) -> String {
    let reference = format!("{BUSYBOX_REPO}:{tag}");
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let lock_path = std::env::temp_dir().join("telefig-test-images.lock");
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if !image_exists(&reference) {
        build_busybox_image(&reference, tag);
    }
    drop(lock);
    reference
}

fn build_busybox_image(reference: &str, tag: &str) {
    let busybox = Path::new(BUSYBOX_BIN);
    check_static(busybox);
    let work = scratch_dir("busybox-rootfs");
    let root = work.join("rootfs");
    for dir in ["bin", "etc", "tmp", "var/log", "www", "root"] {
        fs::create_dir_all(root.join(dir)).expect("create rootfs dirs");
    }
    fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for applet in applets(busybox) {
        let link = root.join("bin").join(&applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("write passwd");
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("write group");
    fs::write(root.join("www/index.html"), format!("telefig test {tag}\n"))
        .expect("write index.html");
    set_mode(&root.join("tmp"), 0o1777);

    let tarball = work.join("rootfs.tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar of the busybox rootfs failed");

    let out = Command::new("docker")
        .args([
            "import",
            "--change",
            r#"CMD ["/bin/sh"]"#,
            "--change",
            &format!("LABEL {TEST_LABEL}=images"),
            "--change",
            &format!("LABEL {TEST_LABEL}.tag={tag}"),
            "--message",
            "telefig test image from busybox-static",
        ])
        .arg(&tarball)
        .arg(reference)
        .output()
        .expect("run docker import");
    let _ = fs::remove_dir_all(&work);
    assert!(
        out.status.success(),
        "docker import {reference} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The applets the binary knows, or a fixed list if it cannot tell.
fn applets(busybox: &Path) -> Vec<String> {
    let mut list: Vec<String> = Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.contains('/') && *l != "busybox")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    list.extend(APPLETS.iter().map(|s| (*s).to_owned()));
    list.sort();
    list.dedup();
    list
}

/// Panic with a hint unless `path` is a statically linked ELF (no PT_INTERP).
fn check_static(path: &Path) {
    let hint = "run `tests/setup --no-test`, which installs Debian's busybox-static";
    let bytes =
        fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}; {hint}", path.display()));
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    assert!(
        bytes.len() > 64 && bytes.starts_with(b"\x7fELF") && bytes[4] == 2 && bytes[5] == 1,
        "{} is not a 64-bit little-endian ELF; {hint}",
        path.display()
    );
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        assert!(
            p_type != 3,
            "{} is dynamically linked and cannot run alone in a container; {hint}",
            path.display()
        );
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A fresh directory under the system temp dir.
pub fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("telefig-{what}-{}", run_id()));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

// ---------------------------------------------------------------------------
// A registry v2 on 127.0.0.1

/// Debian's `docker-registry` (distribution 2.8), serving plain HTTP on
/// `127.0.0.1:<free port>` with its storage in a temp dir. Docker treats
/// 127.0.0.0/8 as an insecure registry, so pushes and pulls need no TLS.
/// Killed, and its storage removed, on drop.
pub struct Registry {
    pub port: u16,
    /// `127.0.0.1:<port>`: the registry part of image references.
    pub addr: String,
    pub dir: PathBuf,
    /// The account every request needs, when started with one.
    pub login: Option<Login>,
    child: Option<Child>,
}

/// The certificate and key (PEM) a registry serves HTTPS with, and the CA
/// its clients' certificates must be signed by, if it demands one.
struct Tls<'a> {
    cert: &'a Path,
    key: &'a Path,
    client_ca: Option<&'a Path>,
}

/// A registry account (htpasswd, bcrypt), and a docker CLI config dir
/// logged in with it (the fixtures push through it; never `~/.docker`).
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub cli_config: PathBuf,
}

impl Registry {
    /// Start one and wait until `GET /v2/` answers 200.
    pub fn start() -> Registry {
        Registry::launch(None, None, None)
    }

    /// Start one serving HTTPS only, with this certificate and key (PEM).
    /// dockerd still pushes to it: it skips verifying loopback registries.
    pub fn start_tls(cert: &Path, key: &Path) -> Registry {
        let tls = Tls {
            cert,
            key,
            client_ca: None,
        };
        Registry::launch(None, Some(tls), None)
    }

    /// Start one serving HTTPS, like [`Registry::start_tls`], that also
    /// refuses every client without a certificate signed by `client_ca`
    /// (`http.tls.clientcas`). It serves the images `images_of` holds:
    /// dockerd has no client certificate to push with, so push there (a
    /// plain HTTP or HTTPS one) and look them up here.
    pub fn start_tls_requiring_client_cert(
        cert: &Path,
        key: &Path,
        client_ca: &Path,
        images_of: &Registry,
    ) -> Registry {
        let tls = Tls {
            cert,
            key,
            client_ca: Some(client_ca),
        };
        Registry::launch(None, Some(tls), Some(&images_of.dir.join("data")))
    }

    /// Start one that answers only `user` (htpasswd auth, a fresh password
    /// per run), and log a private docker CLI config in to it.
    pub fn start_with_login(user: &str) -> Registry {
        let password = format!("pw-{}", run_id());
        let mut registry = Registry::launch(Some((user, &password)), None, None);
        let cli_config = registry.dir.join("docker-cli");
        fs::create_dir_all(&cli_config).expect("mkdir docker-cli");
        let mut login = Command::new("docker")
            .arg("--config")
            .arg(&cli_config)
            .args([
                "login",
                "--username",
                user,
                "--password-stdin",
                &registry.addr,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker login");
        login
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = login.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login {}: {}",
            registry.addr,
            String::from_utf8_lossy(&out.stderr)
        );
        registry.login = Some(Login {
            user: user.to_owned(),
            password,
            cli_config,
        });
        registry
    }

    /// Start one with these options; its images in `storage` (default:
    /// its own dir's `data`).
    fn launch(login: Option<(&str, &str)>, tls: Option<Tls>, storage: Option<&Path>) -> Registry {
        let bin = registry_binary();
        let dir = scratch_dir("registry");
        let storage = storage.map_or_else(|| dir.join("data"), Path::to_owned);
        let auth = match login {
            None => String::new(),
            Some((user, password)) => {
                let path = dir.join("htpasswd");
                fs::write(&path, htpasswd(user, password)).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: telefig-test\n    path: {}\n",
                    path.display()
                )
            }
        };
        let tls_config = match &tls {
            None => String::new(),
            Some(tls) => {
                let client_cas = match tls.client_ca {
                    None => String::new(),
                    Some(ca) => format!("    clientcas:\n      - {}\n", ca.display()),
                };
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n{client_cas}",
                    tls.cert.display(),
                    tls.key.display()
                )
            }
        };
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n{tls_config}{auth}",
                    storage.display()
                ),
            )
            .expect("write registry config");
            let log_path = dir.join("registry.log");
            let log = File::create(&log_path).expect("create registry log");
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let mut registry = Registry {
                port,
                addr,
                dir: dir.clone(),
                login: None,
                child: Some(child),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let status = http_get_status(&registry.addr, "/v2/");
                // A TLS port answers plain HTTP with 400: it is up.
                let up = match tls {
                    Some(_) => status == Some(400),
                    None => status == Some(200) || (login.is_some() && status == Some(401)),
                };
                if up {
                    return registry;
                }
                let exited = registry
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                    .is_some();
                if exited || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = fs::read_to_string(&log_path).unwrap_or_default();
            registry.kill();
            // Keep the dir for the next attempt; the drop below must not remove it.
            registry.dir = PathBuf::new();
        }
        panic!(
            "docker-registry did not come up on 127.0.0.1 after 5 attempts; its log:\n{last_log}"
        );
    }

    /// Whether `GET http://127.0.0.1:<port>/v2/` answers 200 (401 with a login).
    pub fn answers(&self) -> bool {
        let status = http_get_status(&self.addr, "/v2/");
        status == Some(200) || (self.login.is_some() && status == Some(401))
    }

    /// `127.0.0.1:<port>/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    /// Tag a local image as `127.0.0.1:<port>/<image_ref>` and push it; return that reference.
    pub fn push(&self, image_ref: &str) -> String {
        self.push_as(image_ref, image_ref)
    }

    /// Tag local `src` as `127.0.0.1:<port>/<path>` (e.g. `demo/web:v1`), push it,
    /// and return that reference. The local tag is kept; [`untag`] it to make
    /// the code under test pull.
    pub fn push_as(&self, src: &str, path: &str) -> String {
        let dst = self.reference(path);
        retag(src, &dst);
        match &self.login {
            None => docker_ok(&["push", &dst]),
            Some(login) => docker_ok(&[
                OsStr::new("--config"),
                login.cli_config.as_os_str(),
                OsStr::new("push"),
                OsStr::new(&dst),
            ]),
        };
        dst
    }

    /// Kill the registry now (its storage is removed on drop).
    pub fn stop(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The registry's own log (warnings and errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// An htpasswd line with a bcrypt hash (the only kind the registry takes).
fn htpasswd(user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap_or_else(|e| missing(&format!("htpasswd ({e}; Debian's apache2-utils)")));
    assert!(out.status.success(), "htpasswd failed: {out:?}");
    String::from_utf8(out.stdout).expect("htpasswd prints text")
}

fn registry_binary() -> PathBuf {
    let candidates = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            missing(&format!(
                "docker-registry (none of {}; Debian's docker-registry)",
                candidates.join(", ")
            ))
        })
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The status code of a plain HTTP/1.0 `GET path` to `addr`, if it answers.
pub fn http_get_status(addr: &str, path: &str) -> Option<u16> {
    let (status, _) = http_get(addr, path)?;
    Some(status)
}

/// A minimal HTTP/1.0 GET: the status code and the body, if `addr` answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let sock = addr.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.")?
        .get(2..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

// ---------------------------------------------------------------------------
// The binary under test

/// The variables of a deploy's context that [`telefig`] clears.
pub const DEPLOY_CONTEXT: [&str; 5] = [
    "BUILD_COMMIT",
    "ENV_NAME",
    "DEPLOY_ID",
    "STAGE_NAME",
    "NO_COLOR",
];

/// `telefig` (the binary Cargo built for this test run), with the variables
/// that would leak the caller's deploy context cleared: BUILD_COMMIT,
/// ENV_NAME, DEPLOY_ID, STAGE_NAME, NO_COLOR and every TELEFIG_*; and
/// `DOCKER_CONFIG` an empty dir (a test that needs one sets its own).
pub fn telefig() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_telefig"));
    for key in DEPLOY_CONTEXT {
        cmd.env_remove(key);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TELEFIG_") {
            cmd.env_remove(&key);
        }
    }
    // Registry credentials come from the test, never from the host's ~/.docker.
    static NO_DOCKER_CONFIG: OnceLock<PathBuf> = OnceLock::new();
    cmd.env(
        "DOCKER_CONFIG",
        NO_DOCKER_CONFIG.get_or_init(|| scratch_dir("docker-config")),
    );
    cmd
}

/// `telefig ARGS` on the files of a test's scratch dir: `serviceset.conf`
/// and `platform.yaml` in `dir`, serviceset `name`, state dir `dir/state`;
/// no stdin. Not yet run.
pub fn telefig_on(dir: &Path, name: &str, args: &[&str]) -> Command {
    let mut cmd = telefig_in(dir, args);
    cmd.arg("-c")
        .arg(dir.join("serviceset.conf"))
        .args(["--name", name]);
    cmd
}

/// `telefig ARGS` with `platform.yaml` in `dir` and state dir `dir/state`
/// (for the commands that name their serviceset in ARGS); no stdin. Not
/// yet run.
pub fn telefig_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = telefig();
    cmd.args(args)
        .arg("--platform")
        .arg(dir.join("platform.yaml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------
// Processes

/// What a finished command printed, with its exit code, for a failure message.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}

/// `out` exited `code` and its stdout says `what`; on failure, all it printed.
pub fn assert_said(out: &Output, code: i32, what: &str) {
    assert_exit(out, code);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(what),
        "stdout does not say {what:?}:\n{}",
        text(out)
    );
}

pub fn last_stderr_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// Docker's RFC 3339 timestamps as nanoseconds (text comparison is wrong
/// when fractions differ in length).
pub fn nanos(text: &str) -> i64 {
    telefig::engine::status::rfc3339_nanos(text)
        .unwrap_or_else(|| panic!("not a timestamp: {text}"))
}

/// `docker events` arguments for container `container`'s `event`s from
/// `since` (ns) until now, each printed as `<ns> <action>`.
pub fn events_since(since: i64, container: &str, event: &str) -> Vec<String> {
    let secs = |ns: i64| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    vec![
        "events".into(),
        "--since".into(),
        secs(since),
        "--until".into(),
        secs(now_nanos()),
        "--filter".into(),
        format!("container={container}"),
        "--filter".into(),
        format!("event={event}"),
        "--format".into(),
        "{{.TimeNano}} {{.Action}}".into(),
    ]
}

/// `docker events` from `since` (ns) on, live, each event one JSON line,
/// with `filters` (`(key, value)`): what happened between `since` and the
/// moment it subscribed is replayed, so a test may start it just before
/// the command it watches. For [`events::EventFollower::spawn`].
pub fn docker_events_since(since: i64, filters: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args([
        "events",
        "--since",
        &format!("{}.{:09}", since / 1_000_000_000, since % 1_000_000_000),
        "--format",
        "{{json .}}",
    ]);
    for (k, v) in filters {
        cmd.args(["--filter", &format!("{k}={v}")]);
    }
    cmd
}

/// The wall clock in ns since the epoch (Docker's event times).
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// `child`'s exit status once it exits, or `None` after `limit` (it is left running).
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Spawn `cmd` with its stdout and stderr in `dir/<what>.out|.err`.
pub fn spawn_logged(mut cmd: Command, dir: &Path, what: &str) -> Child {
    let out = File::create(dir.join(format!("{what}.out"))).unwrap();
    let err = File::create(dir.join(format!("{what}.err"))).unwrap();
    cmd.stdout(out).stderr(err).spawn().unwrap()
}

/// Wait at most `limit` for a child of [`spawn_logged`]: what it printed
/// and its status, `Err` when it had to be killed (it hung).
pub fn finish_logged(
    mut child: Child,
    dir: &Path,
    what: &str,
    limit: Duration,
) -> Result<Output, Output> {
    let exited = wait_for_exit(&mut child, limit).is_some();
    if !exited {
        let _ = child.kill();
    }
    let out = Output {
        status: child.wait().unwrap(),
        stdout: fs::read(dir.join(format!("{what}.out"))).unwrap_or_default(),
        stderr: fs::read(dir.join(format!("{what}.err"))).unwrap_or_default(),
    };
    if exited { Ok(out) } else { Err(out) }
}

/// Send `SIG<signal>` to `pid`.
pub fn kill(signal: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// A running child (a daemon, a `start` under test) stopped with SIGTERM,
/// then SIGKILL after 10 s, when dropped; woken first in case a test left
/// it paused.
pub struct Terminate(pub Option<Child>);

impl Terminate {
    /// Send it `SIG<name>` (STOP, CONT, …).
    pub fn signal(&self, name: &str) {
        kill(name, self.0.as_ref().expect("still running").id());
    }

    /// SIGTERM it and wait up to `limit`; its exit status, or `None` if it
    /// had to be killed.
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.0.take()?;
        for signal in ["CONT", "TERM"] {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
        }
        let status = wait_for_exit(&mut child, limit);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }
}

impl Drop for Terminate {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}
