//! A private, throwaway dockerd for tests that restart the engine under
//! telefig. The machine's own engine is never touched (except to read the
//! shared busybox test image with `docker save`).
//!
//! Use it as `#[path = "support/dockerd.rs"] mod dockerd;` next to `mod
//! support;`. Each [`PrivateDockerd`] lives in `/tmp/tfd-<pid>-<n>` (short,
//! for unix socket paths): its own config file (`{}`), socket, data root,
//! exec root (and so its own containerd) and pid file, with no bridge and no
//! iptables; containers use host networking. Telefig reaches it through
//! `DOCKER_HOST=`[`PrivateDockerd::host`], the docker CLI through `-H`.
//!
//! Dropping it (also when the test panics) force-removes its containers,
//! stops dockerd, kills what its containerd left behind, unmounts whatever
//! is still mounted under its directory and removes it. A test process that
//! was killed outright cannot run that; the next [`PrivateDockerd::start`]
//! sweeps directories whose owning process is gone.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::support::{busybox_image, missing, run_id, scratch_dir, telefig, telefig_on};

/// Where the private engines live; short on purpose (socket path limits).
const ROOT: &str = "/tmp";
const PREFIX: &str = "tfd-";
const DOCKERD: &str = "dockerd";
/// How long dockerd may take to answer after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long dockerd may take to exit after SIGTERM before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest any one docker CLI call may take (`timeout`'s argument).
const CLI_TIMEOUT: &str = "60";

/// Set once overlay2 failed to start here; later engines use vfs directly.
static OVERLAY2_FAILED: AtomicBool = AtomicBool::new(false);

/// `if !require_private_dockerd() { return; }` after `require_docker()`:
/// without root or without the `dockerd` binary the test fails, saying why
/// (it returns `true` or panics, as `require_docker` does).
pub fn require_private_dockerd() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let binary = Command::new(DOCKERD)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(root, "a private dockerd needs root: run the tests as root");
    if !binary {
        missing("`dockerd` (Debian's docker.io has one)");
    }
    true
}

/// A dockerd of the test's own; see the module comment.
pub struct PrivateDockerd {
    dir: PathBuf,
    live_restore: bool,
    storage_driver: &'static str,
    /// Bytes of the tmpfs mounted as its data root (None: a plain directory).
    data_root_size: Option<u64>,
    child: Option<Child>,
}

impl PrivateDockerd {
    /// Start one (`--live-restore` if asked) and wait until it answers.
    pub fn start(live_restore: bool) -> PrivateDockerd {
        PrivateDockerd::start_with(live_restore, None)
    }

    /// Start one whose data root is a tmpfs of `bytes`: a small disk, for
    /// what telefig does when an image does not fit. Needs root (mount).
    pub fn start_small(bytes: u64) -> PrivateDockerd {
        PrivateDockerd::start_with(false, Some(bytes))
    }

    fn start_with(live_restore: bool, data_root_size: Option<u64>) -> PrivateDockerd {
        sweep_stale();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("{ROOT}/{PREFIX}{}-{n}", std::process::id()));
        if dir.exists() {
            // Left by an earlier process that had our pid.
            clean_dir(&dir);
        }
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        fs::write(dir.join("daemon.json"), "{}\n").expect("write daemon.json");
        let mut engine = PrivateDockerd {
            dir,
            live_restore,
            storage_driver: if OVERLAY2_FAILED.load(Ordering::Relaxed) {
                "vfs"
            } else {
                "overlay2"
            },
            data_root_size,
            child: None,
        };
        engine.mount_data_root();
        if let Err(why) = engine.launch() {
            if engine.storage_driver != "overlay2" {
                panic!("private dockerd did not come up: {why}");
            }
            eprintln!("note: private dockerd with overlay2 failed, trying vfs: {why}");
            OVERLAY2_FAILED.store(true, Ordering::Relaxed);
            engine.stop_process();
            kill_leftovers(&engine.dir);
            unmount_under(&engine.dir);
            let _ = fs::remove_dir_all(engine.dir.join("data"));
            engine.mount_data_root();
            engine.storage_driver = "vfs";
            if let Err(why) = engine.launch() {
                panic!("private dockerd did not come up (vfs either): {why}");
            }
        }
        engine
    }

    /// Mount the small tmpfs data root, if one was asked for.
    fn mount_data_root(&self) {
        let Some(bytes) = self.data_root_size else {
            return;
        };
        let data = self.dir.join("data");
        fs::create_dir_all(&data).unwrap_or_else(|e| panic!("mkdir {}: {e}", data.display()));
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0710"),
                "tmpfs",
            ])
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            out.status.success(),
            "mount a {bytes}-byte tmpfs on {}: {}",
            data.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The data root (`--data-root`).
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `unix:///tmp/tfd-…/docker.sock`, for `DOCKER_HOST` and `-H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// Its directory (logs, data root, exec root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn live_restore(&self) -> bool {
        self.live_restore
    }

    /// dockerd's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// dockerd's own log (all its runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// The last `lines` lines of [`Self::log`].
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `docker -H <host> ARGS` (bounded by `timeout`), whatever its exit status.
    pub fn docker<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new("timeout")
            .args(["-k", "5", CLI_TIMEOUT, "docker", "-H", &self.host()])
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `timeout docker`: {e}"))
    }

    /// Like [`Self::docker`], panicking with its stderr unless it succeeds;
    /// returns stdout, trimmed.
    pub fn docker_ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.docker(args);
        if !out.status.success() {
            let shown: Vec<String> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect();
            panic!(
                "`docker -H {} {}` failed ({}): {}{}",
                self.host(),
                shown.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim(),
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `docker inspect NAME` on this engine: the object, or `None` if absent.
    pub fn try_inspect(&self, name: &str) -> Option<serde_json::Value> {
        let out = self.docker(&["inspect", "--type", "container", name]);
        if !out.status.success() {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        match value {
            serde_json::Value::Array(mut items) if !items.is_empty() => Some(items.swap_remove(0)),
            _ => None,
        }
    }

    /// Names (without the `/`) of all its containers, running or not.
    pub fn container_names(&self) -> Vec<String> {
        self.docker_ok(&["ps", "-a", "--format", "{{.Names}}"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Whether it answers `docker info` now.
    pub fn answers(&self) -> bool {
        Command::new("timeout")
            .args(["-k", "2", "10", "docker", "-H", &self.host()])
            .args(["info", "--format", "{{.ServerVersion}}"])
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Copy the shared busybox test image (built in the main engine by
    /// `support::busybox_image`) into this engine and tag it as each of
    /// `references` (e.g. `tf.local/web:v1`), so nothing is ever pulled.
    pub fn import_busybox(&self, references: &[&str]) {
        let base = busybox_image("1");
        let mut save = Command::new("docker")
            .args(["save", &base])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run docker save");
        let load = Command::new("timeout")
            .args([
                "-k",
                "5",
                CLI_TIMEOUT,
                "docker",
                "-H",
                &self.host(),
                "load",
                "-q",
            ])
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(save.stdout.take().expect("docker save's stdout"))
            .output()
            .expect("run docker load");
        let saved = save.wait().expect("wait for docker save");
        assert!(
            saved.success() && load.status.success(),
            "docker save {base} | docker -H {} load failed: {}",
            self.host(),
            String::from_utf8_lossy(&load.stderr)
        );
        for reference in references {
            self.docker_ok(&["tag", &base, reference]);
        }
    }

    /// SIGTERM dockerd, wait for it to exit, start it again with the same
    /// flags and wait until it answers. With `--live-restore` its containers
    /// keep running throughout; without, dockerd stops them on the way down
    /// and starts the `unless-stopped` ones again on the way up.
    pub fn restart(&mut self) {
        self.stop_process();
        if let Err(why) = self.launch() {
            panic!("private dockerd did not come back after a restart: {why}");
        }
    }

    /// SIGTERM dockerd and wait for it to exit (SIGKILL after 30 s).
    pub fn stop(&mut self) {
        self.stop_process();
    }

    /// Start it again after [`Self::stop`], with the same flags, and wait
    /// until it answers: a restart with a pause the test fills in between.
    pub fn start_again(&mut self) {
        if let Err(why) = self.launch() {
            panic!("private dockerd did not come back after a stop: {why}");
        }
    }

    fn args(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut args = vec![
            format!("--config-file={d}/daemon.json"),
            format!("--host={}", self.host()),
            format!("--data-root={d}/data"),
            format!("--exec-root={d}/x"),
            format!("--pidfile={d}/docker.pid"),
            format!("--storage-driver={}", self.storage_driver),
            "--bridge=none".to_owned(),
            "--iptables=false".to_owned(),
            "--ip-forward=false".to_owned(),
            "--ip-masq=false".to_owned(),
        ];
        if self.live_restore {
            args.push("--live-restore".to_owned());
        }
        args
    }

    /// Spawn dockerd (log appended to `dockerd.log`) and wait until it
    /// answers; on failure, the reason and the log's tail.
    fn launch(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "dockerd is already running");
        let log_path = self.dir.join("dockerd.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));
        let child = Command::new(DOCKERD)
            .args(self.args())
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup dockerd log"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {DOCKERD}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.answers() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!(
                    "dockerd exited ({status}); its log:\n{}",
                    self.log_tail(30)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "dockerd did not answer within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_process(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal("TERM", child.id());
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!(
                        "warning: private dockerd {} ignored SIGTERM for {EXIT_TIMEOUT:?}; killing it",
                        child.id()
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Force-remove every container of this engine (it must answer).
    fn remove_all_containers(&self) {
        let out = self.docker(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if ids.is_empty() {
            return;
        }
        let mut args = vec!["rm".to_owned(), "-f".to_owned(), "-v".to_owned()];
        args.extend(ids);
        let out = self.docker(&args);
        if !out.status.success() {
            eprintln!(
                "warning: private dockerd: docker rm -f failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // Remove the containers through dockerd while it can; if it was
        // stopped with containers still running (live-restore), start it once
        // more to do so. Whatever is left after that is killed below.
        if self.child.is_none() && has_containers(&self.dir) {
            let _ = self.launch();
        }
        if self.child.is_some() && self.answers() {
            self.remove_all_containers();
        }
        self.stop_process();
        clean_dir(&self.dir);
    }
}

/// Whether dockerd's data root holds any container.
fn has_containers(dir: &Path) -> bool {
    !container_ids(dir).is_empty()
}

/// The ids of the containers in a private engine's data root.
fn container_ids(dir: &Path) -> Vec<String> {
    fs::read_dir(dir.join("data/containers"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default()
}

/// Kill what is left, unmount what is mounted, remove the directory.
fn clean_dir(dir: &Path) {
    kill_leftovers(dir);
    unmount_under(dir);
    if fs::remove_dir_all(dir).is_err() {
        // A mount may have needed a moment to go (lazy unmount).
        std::thread::sleep(Duration::from_millis(500));
        unmount_under(dir);
        if let Err(e) = fs::remove_dir_all(dir) {
            eprintln!("warning: cannot remove {}: {e}", dir.display());
        }
    }
}

/// Clean the directories of private engines whose test process is gone.
fn sweep_stale() {
    let Ok(entries) = fs::read_dir(ROOT) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        if !dir.join("daemon.json").exists() {
            continue; // not one of ours
        }
        eprintln!(
            "note: cleaning up a stale private dockerd in {}",
            dir.display()
        );
        // Its dockerd, by the pid file, if that pid is still that dockerd.
        let pidfile = fs::read_to_string(dir.join("docker.pid")).unwrap_or_default();
        if let Ok(pid) = pidfile.trim().parse::<u32>()
            && cmdline(pid).contains(&format!("{}/", dir.display()))
        {
            signal("TERM", pid);
            let deadline = Instant::now() + EXIT_TIMEOUT;
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        clean_dir(&dir);
    }
}

/// SIGKILL every process started under this engine and still alive: its
/// containers' processes (found by the container id in their cgroup), the
/// containerd shims, containerd and dockerd (found by the directory in their
/// command line).
fn kill_leftovers(dir: &Path) {
    // With the slash: `/tmp/tfd-1-1` must not match `/tmp/tfd-1-10`.
    let dir_text = format!("{}/", dir.display());
    let ids = container_ids(dir);
    let me = std::process::id();
    let mut victims = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let by_cmdline = cmdline(pid).contains(&dir_text);
        let by_cgroup = !ids.is_empty() && {
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            ids.iter().any(|id| cgroup.contains(id.as_str()))
        };
        if by_cmdline || by_cgroup {
            victims.push(pid);
        }
    }
    for pid in &victims {
        signal("KILL", *pid);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while victims
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Unmount everything mounted at or under `dir`, deepest first (lazily when
/// a plain unmount fails). Errors are ignored.
fn unmount_under(dir: &Path) {
    let dir_text = dir.to_string_lossy().into_owned();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p == &dir_text || p.starts_with(&format!("{dir_text}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    points.dedup();
    for point in points {
        let plain = Command::new("umount")
            .arg(&point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !plain {
            let _ = Command::new("umount")
                .args(["-l", &point])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `/proc/self/mountinfo` writes space, tab, newline and `\` as `\ooo`.
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A process's command line, arguments joined by spaces ("" if gone).
fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// `kill -SIG PID`, ignoring failure (the process may be gone).
fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A test's files (`platform.yaml`, `serviceset.conf`) in a scratch dir,
/// run against a private engine as serviceset `id`; its main container is
/// `<id>-web`, a sidecar of it `<id>-web-<kind>`.
pub struct OnPrivate {
    pub engine: PrivateDockerd,
    pub id: String,
    pub dir: PathBuf,
}

impl OnPrivate {
    /// `what` names the scratch dir.
    pub fn new(engine: PrivateDockerd, what: &str) -> OnPrivate {
        OnPrivate {
            engine,
            id: run_id(),
            dir: scratch_dir(what),
        }
    }

    pub fn web(&self) -> String {
        format!("{}-web", self.id)
    }

    pub fn name(&self, kind: &str) -> String {
        format!("{}-web-{kind}", self.id)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `telefig ARGS` on the private engine with these files; not yet run.
    pub fn telefig(&self, args: &[&str]) -> Command {
        let mut cmd = telefig_on(&self.dir, &self.id, args);
        cmd.env("DOCKER_HOST", self.engine.host());
        cmd
    }

    /// `telefig daemon` on the private engine and this state dir, stderr
    /// in `daemon.log`; not yet spawned.
    pub fn daemon(&self) -> Command {
        let mut cmd = telefig();
        cmd.env("DOCKER_HOST", self.engine.host())
            .arg("daemon")
            .arg("--state-dir")
            .arg(self.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.dir.join("daemon.log")).unwrap());
        cmd
    }

    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for OnPrivate {
    fn drop(&mut self) {
        // The engine (and its containers) goes with its own Drop, after this.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `struct NAME(OnPrivate)` that reads as its [`OnPrivate`]: a test's own
/// scene, with the test's methods beside the shared ones.
#[allow(unused_macros)]
macro_rules! scene_on_private {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        struct $name(dockerd::OnPrivate);

        impl std::ops::Deref for $name {
            type Target = dockerd::OnPrivate;
            fn deref(&self) -> &dockerd::OnPrivate {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut dockerd::OnPrivate {
                &mut self.0
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use scene_on_private;
