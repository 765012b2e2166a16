//! `telefig render --format kubernetes` (issue: emit a Pod manifest with
//! native sidecars). The YAML printed is parsed back into k8s-openapi's
//! `Pod`, so a manifest Kubernetes' own types cannot read fails here. The
//! demo platform is passed so that a host's /etc/telefig/platform.yaml
//! cannot change the result. No Docker needed.

mod support;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use support::telefig;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Render `file` with the demo platform; the Pod and the raw text.
fn render(file: &str) -> (Pod, String) {
    let out = telefig()
        .args(["render", "--format", "kubernetes", "-c"])
        .arg(repo(file))
        .arg("--platform")
        .arg(repo("examples/demo/platform.yaml"))
        .args(["-e", "BUILD_COMMIT=abc1234", "--name", "demo"])
        .output()
        .expect("run telefig");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "render failed ({}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let pod = telefig::yaml::from_str::<Pod>(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not a Pod: {e}\n{stdout}"));
    (pod, stdout)
}

fn names(containers: &[Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn card_service_is_a_pod_with_native_sidecars_in_start_order() {
    let (pod, text) = render("examples/card-service.conf");
    assert_eq!(pod.metadata.name.as_deref(), Some("demo"));
    assert_eq!(
        pod.metadata.labels.as_ref().unwrap()["telefig.serviceset"],
        "demo"
    );
    let spec = pod.spec.expect("a Pod spec");
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.termination_grace_period_seconds, Some(20));

    // The before-sidecars, in start order, each a native sidecar.
    let init = spec.init_containers.expect("init containers");
    assert_eq!(names(&init), ["web-logging", "web-metrics", "web-proxy"]);
    for c in &init {
        assert_eq!(c.restart_policy.as_deref(), Some("Always"), "{}", c.name);
    }

    // The service is a regular container; discovery runs beside it, and
    // the annotation says it must wait for web itself.
    assert_eq!(names(&spec.containers), ["web", "web-discovery"]);
    let web = &spec.containers[0];
    assert_eq!(
        web.image.as_deref(),
        Some("127.0.0.1:5055/card/web:abc1234")
    );
    let readiness = web.readiness_probe.as_ref().expect("a readiness probe");
    assert_eq!(
        readiness.exec.as_ref().unwrap().command.as_deref().unwrap(),
        ["curl", "-f", "http://localhost:8080/health"]
    );
    assert_eq!(readiness.period_seconds, Some(10));
    assert_eq!(readiness.timeout_seconds, Some(2));
    assert_eq!(readiness.failure_threshold, Some(3));
    let ordering = &pod.metadata.annotations.as_ref().unwrap()["telefig.io/ordering"];
    assert!(
        ordering.contains("web-discovery once web is healthy"),
        "{ordering}"
    );

    // Secrets masked, exactly as `render` masks them.
    let env = web.env.as_ref().expect("env");
    let value = |key: &str| {
        env.iter()
            .find(|e| e.name == key)
            .and_then(|e| e.value.as_deref())
            .unwrap_or_else(|| panic!("no {key} in {env:?}"))
    };
    assert_eq!(value("DB_PASSWORD"), "<masked>");
    assert_eq!(value("HEAP_SIZE"), "4G");
    assert!(!text.contains("hunter2"));
}

#[test]
fn demo_example_renders() {
    let (pod, _) = render("examples/demo/serviceset.conf");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(
        names(spec.init_containers.as_deref().unwrap()),
        ["web-logging", "web-metrics", "web-proxy"]
    );
    assert_eq!(names(&spec.containers), ["web", "web-discovery"]);
}

#[test]
fn what_a_pod_cannot_express_exits_2_and_names_it() {
    let dir = support::scratch_dir("k8s");
    let file = dir.join("named-volume.conf");
    std::fs::write(
        &file,
        "web:\n  docker: {image: web, version: v1, volumes: [\"data:/data\"]}\n",
    )
    .unwrap();
    let out = telefig()
        .args(["render", "--format", "kubernetes", "-c"])
        .arg(&file)
        .arg("--platform")
        .arg(repo("examples/demo/platform.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`web` mounts `data:/data`"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
