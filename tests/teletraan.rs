//! The Teletraan hooks in examples/teletraan, run the way the deploy agent
//! runs them: from an unpacked build in $TARGET, with the agent's variables,
//! calling telefig through its `configure-serviceset` symlink.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

#[test]
fn restarting_deploys_the_example_and_is_idempotent_three_times() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let env_name = guard.id();
    let root = scratch_dir("teletraan");
    // The build as the agent unpacks it: $TARGET/teletraan/{RESTARTING,STOPPING,config/…}.
    let target = root.join("target");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/teletraan"),
        &target.join("teletraan"),
    );
    // telefig on PATH under both names.
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["telefig", "configure-serviceset"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_telefig"), bin.join(name)).unwrap();
    }
    // The platform: sidecar images from a local fake registry host.
    let base = busybox_image("1");
    for image in ["hello:b123", "logging:1", "metrics:1", "discovery:1"] {
        retag(&base, &format!("tf.local/{image}"));
    }
    let sidecar =
        r#"command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]"#;
    std::fs::write(
        root.join("platform.yaml"),
        format!(
            "registries: {{primary: tf.local}}\nlabels: {{io.telefig.test: \"{env_name}\"}}\nsidecars:\n  logging: {{image: \"logging:1\", params: {{dirs: ~}}, {sidecar}}}\n  metrics: {{image: \"metrics:1\", params: {{port: ~}}, {sidecar}}}\n  discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, {sidecar}}}\n"
        ),
    )
    .unwrap();
    let hook = |name: &str| -> Output {
        let mut cmd = Command::new(target.join("teletraan").join(name));
        for key in [
            "BUILD_COMMIT",
            "ENV_NAME",
            "DEPLOY_ID",
            "STAGE_NAME",
            "TARGET",
        ] {
            cmd.env_remove(key);
        }
        // As the agent does: cwd = the script's directory.
        cmd.current_dir(target.join("teletraan"))
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("TARGET", &target)
            .env("DEPLOY_ID", "d-42")
            .env("ENV_NAME", env_name)
            .env("STAGE_NAME", "prod")
            .env("BUILD_COMMIT", "b123")
            .env("BUILD_NAME", "hello")
            .env("TELEFIG_PLATFORM", root.join("platform.yaml"))
            .env("TELEFIG_STATE_DIR", root.join("state"))
            .output()
            .unwrap()
    };
    let show = |o: &Output| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let first = hook("RESTARTING");
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let hello = "hello";
    let c = inspect(hello);
    assert_eq!(c["Config"]["Image"], "tf.local/hello:b123");
    assert_eq!(c["Config"]["Labels"]["telefig.serviceset"], env_name);
    assert_eq!(c["Config"]["Labels"]["telefig.deploy-id"], "d-42");
    let id = c["Id"].clone();
    for _ in 0..2 {
        let again = hook("RESTARTING");
        assert_eq!(again.status.code(), Some(0), "{}", show(&again));
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("unchanged"),
            "{}",
            show(&again)
        );
    }
    assert_eq!(
        inspect(hello)["Id"],
        id,
        "the same container after three runs"
    );
    assert_eq!(
        container_ids_by_label(&format!("telefig.serviceset={env_name}")).len(),
        4
    );

    let stop = hook("STOPPING");
    assert_eq!(stop.status.code(), Some(0), "{}", show(&stop));
    assert_eq!(inspect(hello)["State"]["Running"], false);
}

// ---------------------------------------------------------------------------
// The deploy agent's contract (Teletraan's deploy-agent, deployd/common/
// executor.py): each stage script runs with no arguments, in its own
// process group, with the deploy's environment and cwd = the script's
// directory; a failure is retried up to 3 times in all, with 2 s then 4 s
// pauses; the operator sees only the last 10 KiB of the output.

/// The build the tests unpack: tests/fixtures/builds/metron.
fn fixture_build() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builds/metron")
}

/// What the agent shows after a stage: each attempt's exit code and the tail.
struct Stage {
    attempts: Vec<Option<i32>>,
    tail: String,
}

impl Stage {
    fn succeeded(&self) -> bool {
        self.attempts.last() == Some(&Some(0))
    }
    fn last_line(&self) -> &str {
        self.tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}

/// Output the agent keeps.
const TAIL_BYTES: usize = 10 * 1024;

struct Agent {
    root: PathBuf,
    bin: PathBuf,
    env_name: String,
    service: String,
    port: u16,
}

impl Agent {
    fn new(env_name: &str) -> Agent {
        let root = scratch_dir("agent");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_telefig"),
            bin.join("configure-serviceset"),
        )
        .unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_telefig"), bin.join("telefig")).unwrap();
        let agent = Agent {
            root,
            bin,
            env_name: env_name.to_owned(),
            service: format!("metron-{env_name}"),
            port: free_port(),
        };
        let loop_ = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";
        std::fs::write(
            agent.root.join("platform.yaml"),
            format!(
                r#"registries: {{primary: tf.local}}
labels: {{io.telefig.test: "{env_name}"}}
sidecars:
  logging:
    aliases: [singer]
    image: "singer:1"
    params: {{dirs: /var/log, property_sets: ""}}
    command: ["sh", "-c", "echo sets={{{{property_sets}}}}; {loop_}"]
  zum:
    image: "zum:1"
    params: {{deps: "", wait_for_deps: false, wait_timeout: 300}}
    command: ["sh", "-c", "echo deps={{{{deps}}}} wait={{{{wait_for_deps}}}} timeout={{{{wait_timeout}}}}; {loop_}"]
  knox:
    image: "knox:1"
    command: ["sh", "-c", "{loop_}"]
  logrotate:
    image: "logrotate:1"
    params: {{file: ~}}
    volumes: ["{{{{file}}}}:/etc/logrotate.d/{{{{owner}}}}:ro"]
    command: ["sh", "-c", "test -s /etc/logrotate.d/{{{{owner}}}}; {loop_}"]
"#
            ),
        )
        .unwrap();
        let base = busybox_image("1");
        for image in ["singer:1", "zum:1", "knox:1", "logrotate:1"] {
            retag(&base, &format!("tf.local/{image}"));
        }
        agent
    }

    /// Unpack build `commit` into its own $TARGET, with `edit` applied to
    /// its serviceset file, and tag the build's images.
    fn unpack(&self, commit: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let target = self.root.join("builds").join(commit);
        copy_dir(&fixture_build(), &target);
        let conf = target.join("teletraan/config/serviceset.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, edit(text)).unwrap();
        let base = busybox_image("1");
        retag(&base, &format!("tf.local/metron:{commit}"));
        retag(
            &base,
            &format!("tf.local/zk-register-service-{}:{commit}", self.service),
        );
        target
    }

    /// The stage script as the agent starts it, not yet run.
    fn script(&self, target: &Path, commit: &str, stage: &str) -> Command {
        // $TARGET/teletraan/$ENV_NAME/<stage> when that directory exists.
        let per_env = target.join("teletraan").join(&self.env_name);
        let dir = if per_env.is_dir() {
            per_env
        } else {
            target.join("teletraan")
        };
        let mut cmd = Command::new(dir.join(stage));
        cmd.current_dir(&dir)
            .process_group(0)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin.display()),
            )
            .env("HOME", &self.root)
            .env("DEPLOY_ID", format!("d-{commit}"))
            .env("DEPLOY_STEP", stage)
            .env("ENV_NAME", &self.env_name)
            .env("STAGE_NAME", "prod")
            .env("BUILD_COMMIT", commit)
            .env("BUILD_NAME", "metron")
            .env("BUILD_ID", format!("metron_{commit}"))
            .env("TARGET", target)
            // The stage's script variables.
            .env("SERVICE", &self.service)
            .env("HEALTH_PORT", self.port.to_string())
            // Where this test keeps telefig's platform and state.
            .env("TELEFIG_PLATFORM", self.root.join("platform.yaml"))
            .env("TELEFIG_STATE_DIR", self.root.join("state"));
        if let Some(host) = std::env::var_os("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        cmd
    }

    fn log(&self, commit: &str, stage: &str) -> PathBuf {
        self.root.join(format!("{commit}-{stage}.log"))
    }

    /// Run `stage` of build `commit` the way the agent does, retries included.
    fn run(&self, target: &Path, commit: &str, stage: &str) -> Stage {
        let log = self.log(commit, stage);
        let mut attempts = Vec::new();
        for pause in [Some(2), Some(4), None] {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            let status = self
                .script(target, commit, stage)
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .status()
                .unwrap();
            attempts.push(status.code());
            if status.success() {
                break;
            }
            match pause {
                // The agent's own back-off between attempts.
                Some(secs) => std::thread::sleep(Duration::from_secs(secs)),
                None => break,
            }
        }
        let bytes = std::fs::read(&log).unwrap();
        let tail =
            String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(TAIL_BYTES)..]).into_owned();
        Stage { attempts, tail }
    }

    fn containers(&self) -> Vec<String> {
        container_ids_by_label(&format!("telefig.serviceset={}", self.env_name))
    }

    /// `docker ps` lines as the agent reads them to judge a deploy.
    fn ps_lines(&self) -> Vec<String> {
        docker_ok(&[
            "ps",
            "--filter",
            &format!("label=telefig.serviceset={}", self.env_name),
            "--format",
            "{{.Image}};{{.Names}};{{.Labels}}",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn status(&self) -> Option<i32> {
        telefig()
            .args(["status", "--name", &self.env_name, "--state-dir"])
            .arg(self.root.join("state"))
            .output()
            .unwrap()
            .status
            .code()
    }
}

/// Every container of the serviceset is running (and healthy where it has a check).
fn all_up(ids: &[String]) -> bool {
    ids.iter().all(|id| {
        let c = inspect(id);
        c["State"]["Running"] == true
            && (c["State"]["Health"].is_null() || c["State"]["Health"]["Status"] == "healthy")
    })
}

#[test]
fn agent_deploys_a_real_layout_then_a_new_build_then_rolls_back_a_failing_one() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let agent = Agent::new(guard.id());
    let service = agent.service.clone();

    // Build 1: everything comes up, tagged with the commit.
    let t1 = agent.unpack("c1aaaa1", |t| t);
    let first = agent.run(&t1, "c1aaaa1", "RESTARTING");
    assert_eq!(first.attempts, [Some(0)], "{}", first.tail);
    let ids = agent.containers();
    assert_eq!(
        ids.len(),
        7,
        "4 sidecars, the service, zk-register-service and its zum"
    );
    assert!(all_up(&ids), "{}", first.tail);
    let main = inspect(&service);
    assert_eq!(main["Config"]["Image"], "tf.local/metron:c1aaaa1");
    let labels = &main["Config"]["Labels"];
    assert_eq!(labels["redeploy_when_unhealthy"], "enabled");
    assert_eq!(labels["redeploy_max_retry"], "3");
    assert_eq!(labels["telefig.commit"], "c1aaaa1");
    assert_eq!(labels["telefig.deploy-id"], "d-c1aaaa1");
    let zk = inspect(&format!("zk-register-service-{service}"));
    assert_eq!(
        zk["Config"]["Image"],
        format!("tf.local/zk-register-service-{service}:c1aaaa1")
    );
    let zum = inspect(&format!("{service}-zum"));
    let zum_cmd = zum["Config"]["Cmd"].to_string();
    assert!(
        zum_cmd.contains("wait=true") && zum_cmd.contains("timeout=360"),
        "{zum_cmd}"
    );
    let rotate = inspect(&format!("{service}-logrotate"));
    let bind = rotate["HostConfig"]["Binds"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        bind.starts_with(&format!(
            "{}/teletraan/config/logrotate/metron.conf:",
            t1.display()
        )),
        "{bind}"
    );
    // The agent's health probe: `docker ps` lines holding the commit.
    let lines = agent.ps_lines();
    let main_line = lines
        .iter()
        .find(|l| l.split(';').nth(1) == Some(service.as_str()))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(main_line.contains("c1aaaa1"), "{main_line}");
    assert!(
        main_line.contains("redeploy_when_unhealthy=enabled"),
        "{main_line}"
    );
    assert_eq!(agent.status(), Some(0));

    // Build 2: a new commit recreates the main container.
    let old_id = main["Id"].clone();
    let t2 = agent.unpack("c2bbbb2", |t| t);
    let second = agent.run(&t2, "c2bbbb2", "RESTARTING");
    assert_eq!(second.attempts, [Some(0)], "{}", second.tail);
    let main = inspect(&service);
    assert_ne!(main["Id"], old_id, "a new build recreates the service");
    assert_eq!(main["Config"]["Image"], "tf.local/metron:c2bbbb2");
    assert!(all_up(&agent.containers()));

    // Build 3 never turns healthy: every attempt rolls back and fails, and
    // the last line the operator sees names the failure.
    let t3 = agent.unpack("c3cccc3", |t| t.replace("/health\"]", "/missing\"]"));
    let third = agent.run(&t3, "c3cccc3", "RESTARTING");
    assert_eq!(
        third.attempts,
        [Some(1), Some(1), Some(1)],
        "{}",
        third.tail
    );
    let last = third.last_line();
    assert!(
        last.starts_with("telefig: failed (exit 1)"),
        "{last}\n{}",
        third.tail
    );
    assert!(
        last.contains(&service),
        "the summary names the container: {last}"
    );
    assert!(third.tail.len() <= TAIL_BYTES);
    let main = inspect(&service);
    assert_eq!(
        main["Config"]["Image"], "tf.local/metron:c2bbbb2",
        "rolled back"
    );
    assert_eq!(main["State"]["Running"], true);
}

#[test]
fn a_hook_killed_mid_start_then_retried_by_the_agent_converges() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let agent = Agent::new(guard.id());
    let t1 = agent.unpack("k1aaaa1", |t| t);
    let first = agent.run(&t1, "k1aaaa1", "RESTARTING");
    assert_eq!(first.attempts, [Some(0)], "{}", first.tail);

    // Build 2: SIGKILL the hook's process group as soon as telefig has
    // created the new build's first container (as the agent does at its
    // stage timeout).
    let t2 = agent.unpack("k2bbbb2", |t| t);
    let mut hook = agent
        .script(&t2, "k2bbbb2", "RESTARTING")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let created = wait_until(Duration::from_secs(60), || {
        !container_ids_by_label("telefig.commit=k2bbbb2").is_empty()
    });
    assert!(created, "the hook created a container of build 2");
    let pgid = hook.id().to_string();
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(hook.wait().unwrap().code(), None, "killed by a signal");

    // The agent's retry converges.
    let retry = agent.run(&t2, "k2bbbb2", "RESTARTING");
    assert!(retry.succeeded(), "{:?}\n{}", retry.attempts, retry.tail);
    let ids = agent.containers();
    assert_eq!(ids.len(), 7, "no leftover container");
    assert!(all_up(&ids), "{}", retry.tail);
    assert_eq!(
        inspect(&agent.service)["Config"]["Image"],
        "tf.local/metron:k2bbbb2"
    );
    assert_eq!(agent.status(), Some(0));
}

#[test]
fn configure_serviceset_answers_the_agents_version_probe() {
    let dir = scratch_dir("probe");
    let link = dir.join("configure-serviceset");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_telefig"), &link).unwrap();
    for probe in ["-v", "--version"] {
        let out = Command::new(&link).arg(probe).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{probe}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(env!("CARGO_PKG_VERSION")),
            "{probe}: {stdout}"
        );
    }
}

/// validate and render accept the real layout run from the hook's
/// directory; a relative path found nowhere is an error, never a bind.
#[test]
fn the_real_layout_validates_and_renders_from_the_hook_directory() {
    let build = fixture_build();
    let run = |cmd: &str, target: Option<&Path>| {
        let mut c = telefig();
        c.current_dir(build.join("teletraan"))
            .env_remove("TARGET")
            .args([cmd, "-c", "teletraan/config/serviceset.conf"])
            .args([
                "-e",
                "BUILD_COMMIT=c1",
                "-e",
                "HEALTH_PORT=18000",
                "-e",
                "STAGE_NAME=prod",
            ])
            .arg("--platform")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/platform/default.yaml"));
        if let Some(t) = target {
            c.env("TARGET", t);
        }
        c.output().unwrap()
    };
    let out = run("validate", Some(&build));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("found under $TARGET"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 cron entries"), "{stdout}");

    let out = run("render", Some(&build));
    assert_eq!(out.status.code(), Some(0));
    let rendered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let binds: Vec<String> = rendered
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["HostConfig"]["Binds"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|b| b.as_str().unwrap().to_owned())
        .collect();
    assert!(binds.iter().all(|b| b.starts_with('/')), "{binds:?}");
    assert!(
        binds.contains(&format!(
            "{}/teletraan/config/logrotate/metron.conf:/etc/logrotate.d/metron:ro",
            build.display()
        )),
        "{binds:?}"
    );

    let out = run("render", None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`teletraan/config/serviceset.conf` is a relative path, found neither in the current directory"),
        "{stderr}"
    );
}
