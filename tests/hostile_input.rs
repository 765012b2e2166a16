//! Hostile command lines against the real binary: each must exit 2 with a
//! message, never panic (exit 101), and write nothing outside the state dir.
//! None of these reach Docker: they fail while reading their input.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

fn run(args: &[&OsStr]) -> Output {
    let state = scratch_dir("hostile-state");
    telefig()
        .args(args)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run telefig")
}

fn assert_bad_input(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "{what}: telefig panicked:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{what}: want exit 2\n{stderr}");
    assert!(
        stderr.contains(needle),
        "{what}: stderr lacks {needle:?}:\n{stderr}"
    );
    // SPEC §6: the last line on stderr is a one-line summary.
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("telefig: failed (exit 2): "),
        "{what}: last line {last:?}"
    );
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn non_utf8_arguments_exit_2_with_a_message() {
    let bad = OsStr::from_bytes(b"\xff");
    let bad_kv = OsStr::from_bytes(b"K=\xff");
    let bad_name = OsStr::from_bytes(b"web\xff");
    let conf = scratch_dir("hostile-conf").join("web.conf");
    std::fs::write(&conf, "web: {docker: {image: x, version: v1}}\n").unwrap();
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (vec![os("validate"), os("-c"), bad], "serviceset file"),
        (
            vec![os("validate"), os("-c"), conf.as_os_str(), os("-e"), bad_kv],
            "invalid UTF-8",
        ),
        (vec![os("stop"), os("--name"), bad_name], "invalid UTF-8"),
        (vec![os("stop"), os("-c"), bad], "serviceset file"),
        (
            vec![os("stop"), os("--name"), os("web"), os("--timeout"), bad],
            "invalid UTF-8",
        ),
        (vec![os("rollback"), bad_name], "invalid UTF-8"),
        (vec![os("logs"), bad_name], "invalid UTF-8"),
    ];
    for (args, needle) in cases {
        let out = run(&args);
        assert_bad_input(&out, needle, &format!("{args:?}"));
    }
}

/// A state dir whose path is not UTF-8 is a usable path; the lock file
/// recorded `std::env::args()`, which panicked on it.
#[test]
fn a_non_utf8_state_dir_does_not_panic() {
    if !require_docker() {
        return;
    }
    let mut dir = scratch_dir("hostile-bytes").into_os_string();
    dir.push(OsStr::from_bytes(b"/st\xffate"));
    let name = run_id();
    let out = telefig()
        .args(["stop", "--name", &name, "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(Path::new(&dir).join(format!("locks/{name}.lock")).exists());
}

#[test]
fn an_extreme_timeout_exits_2_with_a_message() {
    for value in [
        "1e20",
        "NaN",
        "18446744073709551616",
        "99999999999999999999h",
    ] {
        let out = run(&[
            os("stop"),
            os("--name"),
            os("web"),
            os("--timeout"),
            os(value),
        ]);
        assert_bad_input(&out, "is not a duration", value);
    }
}

#[test]
fn a_stop_grace_period_of_1e20_exits_2_from_validate() {
    let conf = scratch_dir("hostile-grace").join("web.conf");
    std::fs::write(
        &conf,
        "web:\n  docker: {image: x, version: v1, stop_grace_period: 1e20}\n",
    )
    .unwrap();
    let out = run(&[os("validate"), os("-c"), conf.as_os_str()]);
    assert_bad_input(&out, "web.docker.stop_grace_period", "1e20");
}

/// The platform file reads durations through the same parser.
#[test]
fn a_platform_template_with_an_extreme_duration_exits_2() {
    let (conf, platform) = logging_sidecar_on(
        "hostile-platform",
        "sidecars:\n  logging: {image: \"singer:1\", stop_grace_period: 1e20}\n",
    );
    let out = validate_with(&conf, &platform);
    assert_bad_input(
        &out,
        "is not a duration",
        "platform stop_grace_period: 1e20",
    );
}

/// `--name ../../escape --state-dir D/sub` wrote `D/escape.lock`.
#[test]
fn a_serviceset_name_cannot_escape_the_state_dir() {
    let root = scratch_dir("hostile-escape");
    let state = root.join("a").join("sub");
    let conf = root.join("web.conf");
    std::fs::write(&conf, "web: {docker: {image: x, version: v1}}\n").unwrap();
    let names = [
        "../../escape",
        "..",
        ".",
        "a/b",
        "-x",
        "",
        "x y",
        "/etc/passwd",
    ];
    for name in names {
        for cmd in [
            "stop", "down", "start", "restart", "status", "plan", "validate",
        ] {
            let flag = format!("--name={name}");
            let mut args = vec![os(cmd), os(&flag)];
            if matches!(cmd, "start" | "plan" | "validate") {
                args.extend([os("-c"), conf.as_os_str()]);
            }
            let out = telefig()
                .args(&args)
                .arg("--state-dir")
                .arg(&state)
                .output()
                .unwrap();
            assert_bad_input(&out, "serviceset name", &format!("{cmd} --name {name:?}"));
        }
        let out = telefig()
            .args(["rollback", "--state-dir"])
            .arg(&state)
            .args(["--", name])
            .output()
            .unwrap();
        assert_bad_input(&out, "serviceset name", &format!("rollback {name:?}"));
    }
    // $ENV_NAME and the name derived from the file go through the same rule.
    let out = telefig()
        .args(["validate", "-c"])
        .arg(&conf)
        .env("ENV_NAME", "../../escape")
        .output()
        .unwrap();
    assert_bad_input(&out, "serviceset name", "ENV_NAME=../../escape");
    let odd = root.join("-odd name.conf");
    std::fs::write(&odd, "web: {docker: {image: x, version: v1}}\n").unwrap();
    let out = telefig()
        .args(["validate", "-c"])
        .arg(&odd)
        .output()
        .unwrap();
    assert_bad_input(&out, "serviceset name", "a file named `-odd name.conf`");
    assert_nothing_outside(&root, &state);
}

/// Every file under `root` lies under `inside` (or is one the test wrote).
fn assert_nothing_outside(root: &Path, inside: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.starts_with(inside) || path.extension().is_some_and(|e| e == "conf") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                panic!("telefig wrote {} outside its state dir", path.display());
            }
        }
    }
}

/// A negative or malformed value on any duration flag is a duration error
/// naming the flag and the forms accepted — not clap's "unexpected
/// argument" for `-5s`.
#[test]
fn a_negative_or_malformed_duration_on_any_flag_names_the_flag() {
    let flags: [(&[&str], &str); 4] = [
        (&["stop", "--name", "web"], "--timeout"),
        (&["start", "-c", "web.conf"], "--timeout"),
        (&["daemon"], "--unhealthy-budget"),
        (&["daemon"], "--docker-timeout"),
    ];
    for (command, flag) in flags {
        for value in ["-5s", "-1", "-1m30s", "5 parsecs", "--"] {
            let mut args: Vec<&OsStr> = command.iter().map(|a| os(a)).collect();
            args.push(os(flag));
            args.push(os(value));
            let out = run(&args);
            let what = format!("{command:?} {flag} {value}");
            assert_bad_input(&out, "is not a duration", &what);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(flag), "{what}: names the flag\n{stderr}");
            assert!(
                stderr.contains("use seconds (10) or a duration string"),
                "{what}: says what is accepted\n{stderr}"
            );
        }
    }
    // The daemon's bound on a Docker call cannot be zero.
    let out = run(&[os("daemon"), os("--docker-timeout"), os("0s")]);
    assert_bad_input(&out, "`0s` is zero", "--docker-timeout 0s");
}

/// `start` connects to Docker and takes the lock while its file is still
/// being parsed: a bad file must still be what it reports, with exit 2 and
/// the place in the file, even when no Docker answers, and must leave the
/// serviceset's lock free.
#[test]
fn start_reports_a_bad_file_first_even_with_no_docker_to_answer() {
    let dir = scratch_dir("hostile-start");
    let conf = dir.join("web.conf");
    std::fs::write(
        &conf,
        "web:\n  docker: {image: x, version: v1}\n  bogus: [\n",
    )
    .unwrap();
    let state = dir.join("state");
    for docker_host in [
        format!("unix://{}", dir.join("no-docker.sock").display()),
        // Whatever answers (or not) on this machine's engine.
        String::from("unix:///var/run/docker.sock"),
    ] {
        let out = telefig()
            .env("DOCKER_HOST", &docker_host)
            .args([
                os("start"),
                os("-c"),
                conf.as_os_str(),
                os("--name"),
                os("web"),
            ])
            .arg("--state-dir")
            .arg(&state)
            .output()
            .expect("run telefig");
        assert_bad_input(&out, "web.conf:3:", &docker_host);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("Docker"), "{docker_host}: {stderr}");
    }
    // Nothing holds the lock afterwards: a second caller need not wait.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(state.join("locks/web.lock"));
    if let Ok(lock) = lock {
        lock.try_lock()
            .expect("the lock is free after a failed start");
    }
}

/// Like [`run`], but a hang fails the test instead of stalling it.
fn run_within(args: &[&OsStr]) -> Output {
    let state = scratch_dir("hostile-state");
    let mut cmd = telefig();
    cmd.args(args).arg("--state-dir").arg(&state);
    output_within(&mut cmd, std::time::Duration::from_secs(60))
}

/// `telefig validate -c conf --platform platform`, a hang failing the test.
fn validate_with(conf: &Path, platform: &Path) -> Output {
    run_within(&[
        os("validate"),
        os("-c"),
        conf.as_os_str(),
        os("--platform"),
        platform.as_os_str(),
    ])
}

/// A scratch dir `name` with `web.conf` (web and its logging sidecar) and
/// `platform.yaml` holding `platform`: their paths.
fn logging_sidecar_on(name: &str, platform: &str) -> (PathBuf, PathBuf) {
    let dir = scratch_dir(name);
    let conf = dir.join("web.conf");
    std::fs::write(
        &conf,
        "web: {docker: {image: x, version: v1}, sidecars: {logging: ~}}\n",
    )
    .unwrap();
    let path = dir.join("platform.yaml");
    std::fs::write(&path, platform).unwrap();
    (conf, path)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A FIFO blocked `validate` forever, `/dev/zero` was read until memory ran
/// out, a loop of links was reported as "found neither in the current
/// directory": each file telefig reads is a regular file within a cap.
#[test]
fn a_file_that_is_not_a_regular_file_within_the_cap_exits_2_naming_it() {
    let dir = scratch_dir("hostile-files");
    let conf = dir.join("web.conf");
    std::fs::write(&conf, "web: {docker: {image: x, version: v1}}\n").unwrap();
    let fifo = dir.join("fifo.conf");
    mkfifo(&fifo);
    let looped = dir.join("loop.conf");
    std::os::unix::fs::symlink(dir.join("loop2.conf"), &looped).unwrap();
    std::os::unix::fs::symlink(&looped, dir.join("loop2.conf")).unwrap();
    let zero = dir.join("zero.conf");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    // Sparse: 5 MiB that take no room.
    let big = dir.join("big.conf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(5 << 20)
        .unwrap();
    let cases: [(&Path, &str); 5] = [
        (&fifo, "it is a FIFO (named pipe), not a regular file"),
        (
            Path::new("/dev/zero"),
            "it is a character device, not a regular file",
        ),
        (&zero, "it is a character device, not a regular file"),
        (&looped, "it is a loop of symbolic links"),
        (&big, "it is larger than the limit of 4 MiB (4194304 bytes)"),
    ];
    for (path, why) in cases {
        let shown = path.display().to_string();
        let out = run_within(&[os("validate"), os("-c"), path.as_os_str()]);
        assert_bad_input(&out, why, &format!("-c {shown}"));
        assert_bad_input(&out, &format!("serviceset file {shown}"), &shown);
        let out = run_within(&[
            os("validate"),
            os("-c"),
            conf.as_os_str(),
            os("--platform"),
            path.as_os_str(),
        ]);
        assert_bad_input(&out, why, &format!("--platform {shown}"));
        assert_bad_input(&out, &format!("platform file {shown}"), &shown);
    }
    // A relative -c is looked up; a loop there is a loop, not "not found".
    let out = output_within(
        telefig()
            .current_dir(&dir)
            .args(["validate", "-c", "loop.conf"]),
        std::time::Duration::from_secs(60),
    );
    assert_bad_input(
        &out,
        "loop.conf is a loop of symbolic links",
        "-c loop.conf",
    );
}

/// A platform sidecar template is rendered with the same budget as the
/// serviceset file: two nested loops in one stop instead of hanging.
#[test]
fn a_sidecar_template_that_never_ends_runs_out_of_its_budget() {
    let (conf, platform) = logging_sidecar_on(
        "hostile-sidecar-loop",
        "sidecars:\n  logging:\n    image: \"singer:1\"\n    command: [\"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\"]\n",
    );
    let out = validate_with(&conf, &platform);
    assert_bad_input(
        &out,
        "ran out of its work budget (1000000 units)",
        "a sidecar template with nested loops",
    );
    assert_bad_input(
        &out,
        &platform.display().to_string(),
        "names the platform file",
    );
}

/// A file saved with a UTF-8 byte-order mark was refused as "more than
/// one document".
#[test]
fn a_file_that_starts_with_a_byte_order_mark_is_read() {
    let dir = scratch_dir("hostile-bom");
    let conf = dir.join("web.conf");
    std::fs::write(
        &conf,
        "\u{feff}version: 1\nweb: {docker: {image: x, version: v1}}\n",
    )
    .unwrap();
    let platform = dir.join("platform.yaml");
    std::fs::write(&platform, "\u{feff}labels: {team: cards}\n").unwrap();
    let out = validate_with(&conf, &platform);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// A name or value with terminal control characters (YAML's `\e`, `\x9b`)
/// was echoed raw: the escape sequence ran on the reader's terminal. Every
/// message now shows it escaped.
#[test]
fn control_characters_in_names_are_escaped_in_messages() {
    let dir = scratch_dir("hostile-controls");
    let cases = [
        (
            "\"web\\e[2J\":\n  docker: {image: x, version: v1}\n",
            "web\\u{1b}[2J",
        ),
        (
            "web:\n  docker: {image: x, version: v1}\n  sidecars:\n    \"lo\\e]0;pwned\\agging\": {}\n",
            "lo\\u{1b}]0;pwned\\u{7}gging",
        ),
        (
            "web:\n  docker: {image: x, version: v1, \"imag\\x9b31m\": 1}\n",
            "\\u{9b}31m",
        ),
        (
            "web:\n  docker: {image: x, version: v1, environment: [\"K\\e[8m=1\"]}\n",
            "K\\u{1b}[8m",
        ),
    ];
    for (i, (text, shown)) in cases.iter().enumerate() {
        let conf = dir.join(format!("c{i}.conf"));
        std::fs::write(&conf, text).unwrap();
        let out = run(&[os("validate"), os("-c"), conf.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            !stderr.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "{text}: a control character reached the terminal: {stderr:?}"
        );
        assert!(stderr.contains(shown), "{text}: wants {shown}: {stderr}");
    }
    // And what clap echoes of a command line.
    let out = run(&[os("validate"), os("--bogus\u{1b}[2J")]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
}

/// `logrotate: {file: lr.conf}` reached Docker as `lr.conf:…`, which it
/// takes for a named volume; `..` went through as written. Every bind
/// source is now absolute and normalized, whoever wrote it.
#[test]
fn bind_sources_reach_docker_absolute_and_normalized() {
    let dir = scratch_dir("hostile-binds");
    std::fs::write(dir.join("lr.conf"), "").unwrap();
    std::fs::write(
        dir.join("web.conf"),
        "web:\n  docker: {image: x, version: v1, volumes: [\"/var/log/../log/web/:/logs/\", \"./lr.conf:/etc/lr.conf:ro\"]}\n  sidecars:\n    logrotate: {file: lr.conf}\n",
    )
    .unwrap();
    let out = telefig()
        .current_dir(&dir)
        .args(["render", "-c", "web.conf"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rendered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let binds = |i: usize| rendered[i]["HostConfig"]["Binds"].clone();
    let lr = dir.join("lr.conf").display().to_string();
    assert_eq!(
        binds(0),
        serde_json::json!(["/var/log/web:/logs", format!("{lr}:/etc/lr.conf:ro")])
    );
    assert_eq!(
        binds(1),
        serde_json::json!([format!("{lr}:/etc/logrotate.d/web:ro"), "/var/log:/var/log"])
    );
    assert!(
        stderr.contains("using web-logrotate: bind source `lr.conf`"),
        "{stderr}"
    );
}

/// What the platform file names is checked as it is read: a sidecar kind
/// that is not a plain name (`../x` made a container `web-../x`), image
/// cleanup settings that cannot hold, a registry that is not a host.
#[test]
fn a_platform_file_with_unusable_names_or_numbers_exits_2_at_its_line() {
    let dir = scratch_dir("hostile-platform-names");
    let conf = dir.join("web.conf");
    std::fs::write(&conf, "web: {docker: {image: x, version: v1}}\n").unwrap();
    for (text, needle) in [
        (
            "sidecars:\n  ../x: {image: \"x:1\"}\n",
            "platform.yaml:2:3: sidecar kind `../x` is not a plain name",
        ),
        (
            "images: {keep: 0, high: 85, low: 80}\n",
            "platform.yaml:1:1: images: `keep` must be at least 1",
        ),
        (
            "images: {keep: 2, high: 200, low: 300}\n",
            "platform.yaml:1:1: images: `high` (200) and `low` (300)",
        ),
        (
            "registries: {primary: \"http://evil host/../\"}\n",
            "platform.yaml:1:1: `http://evil host/../` is not a registry host",
        ),
    ] {
        let platform = dir.join("platform.yaml");
        std::fs::write(&platform, text).unwrap();
        let out = validate_with(&conf, &platform);
        assert_bad_input(&out, needle, text);
    }
}
