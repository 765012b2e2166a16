//! Log limits and resource bounds reach Docker (issue 14, items 3 and 4):
//! every container telefig creates carries log options, sidecar templates'
//! `mem_limit`/`cpus` and the serviceset's cgroup parent are what Docker
//! holds. Against the real Docker Engine; objects labelled and removed by
//! label.

#[path = "support/stack.rs"]
mod stack;
mod support;

use stack::*;
use support::*;

#[test]
fn every_created_container_has_log_limits_by_default() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let names = s.container_names();
    assert_eq!(names, s.wanted_names());
    for name in names {
        let log = &inspect(&name)["HostConfig"]["LogConfig"];
        assert_eq!(log["Type"], "json-file", "{name}: {log}");
        assert_eq!(log["Config"]["max-size"], "100m", "{name}: {log}");
        assert_eq!(log["Config"]["max-file"], "5", "{name}: {log}");
    }
}

#[test]
fn own_logging_template_bounds_and_cgroup_parent_reach_docker() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let path = s.dir.join("platform.yaml");
    let platform = std::fs::read_to_string(&path).unwrap().replace(
        "{image: \"metrics:1\",",
        "{image: \"metrics:1\", mem_limit: 32m, cpus: 0.5,",
    );
    let platform = format!(
        "defaults: {{cgroup_parent: /telefig-test, logging: {{driver: local, options: {{max-size: 8m}}}}}}\n{platform}"
    );
    std::fs::write(&path, platform).unwrap();
    s.write_web(
        "sleep 1; touch /ready; while :; do sleep 1 & wait; done",
        "A=1",
        "5s",
        "    logging: {driver: json-file, options: {max-size: 7m, max-file: 2}}\n",
    );
    let out = s.start(&[]);
    assert_exit(&out, 0);
    for name in s.all() {
        let host = &inspect(&name)["HostConfig"];
        assert_eq!(host["CgroupParent"], "/telefig-test", "{name}");
        let log = &host["LogConfig"];
        if name == s.web() {
            assert_eq!(log["Type"], "json-file", "{log}");
            assert_eq!(log["Config"]["max-size"], "7m", "{log}");
            assert_eq!(log["Config"]["max-file"], "2", "{log}");
        } else {
            assert_eq!(log["Type"], "local", "{name}: {log}");
            assert_eq!(log["Config"]["max-size"], "8m", "{name}: {log}");
        }
        if name == s.name("metrics") {
            assert_eq!(host["Memory"], 32 * 1024 * 1024, "{name}");
            assert_eq!(host["NanoCpus"], 500_000_000, "{name}");
        } else {
            assert_eq!(host["Memory"], 0, "{name}");
        }
    }
}
