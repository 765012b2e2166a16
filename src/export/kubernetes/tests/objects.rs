//! Tests of the objects beside the Deployment: Jobs, CronJobs, the Secret,
//! stop signals, labels and names.

use super::*;

fn jobs(m: &Manifest) -> Vec<&k8s_openapi::api::batch::v1::Job> {
    m.objects
        .iter()
        .filter_map(|o| match o {
            Object::Job(j) => Some(&**j),
            _ => None,
        })
        .collect()
}

#[test]
fn standalone_jobs_are_jobs_with_their_job_dependencies_first() {
    let set = r#"
schema:
  kind: job
  docker: {image: schema, version: v1}
seed:
  kind: job
  docker: {image: seed, version: v1}
  depends_on: {schema: {condition: completed}, db: {condition: healthy}}
db:
  docker: {image: db, version: v1}
"#;
    let m = manifest(set).unwrap();
    let jobs = jobs(&m);
    assert_eq!(jobs.len(), 1, "schema runs inside seed's Job");
    let job = jobs[0];
    assert_eq!(job.metadata.name.as_deref(), Some("shop-seed"));
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(names(pod.init_containers.as_deref().unwrap()), ["schema"]);
    assert_eq!(names(&pod.containers), ["seed"]);
    // Waiting for db cannot be held in a Job: said, not dropped.
    assert!(
        m.not_mapped
            .iter()
            .any(|n| n.contains("seed once db is healthy")),
        "{:?}",
        m.not_mapped
    );
    // A serviceset of jobs only has no Deployment.
    let only = manifest("seed:\n  kind: job\n  docker: {image: seed, version: v1}\n").unwrap();
    assert!(matches!(only.objects.as_slice(), [Object::Job(_)]));
}

#[test]
fn cron_entries_are_cron_jobs_that_never_overlap() {
    let set = r#"
web:
  docker: {image: web, version: v1, environment: [API_KEY=k]}
  sidecars:
    cron:
      - name: WebNightly
        schedule: "30 2 * * *"
        command: ["/bin/report", "--nightly"]
        user: root
      - name: poke
        schedule: "@hourly"
        command: docker exec -i web /bin/poke --now
      - name: often
        schedule: "@every 10s"
        command: ["/bin/true"]
"#;
    let m = manifest(set).unwrap();
    let crons: Vec<_> = m
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::CronJob(c) => Some(c),
            _ => None,
        })
        .collect();
    let cron_names: Vec<_> = crons.iter().map(|c| c.metadata.name.as_deref()).collect();
    assert_eq!(cron_names, [Some("shop-web-nightly"), Some("shop-poke")]);
    let spec = &crons[0].spec;
    assert_eq!(spec.schedule, "30 2 * * *");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let pod = spec
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("reg.test/web:v1"));
    assert_eq!(
        c.command.as_deref(),
        Some(&["/bin/report".to_owned(), "--nightly".to_owned()][..])
    );
    assert_eq!(c.args, None);
    assert_eq!(c.security_context.as_ref().unwrap().run_as_user, Some(0));
    let env = c.env.as_ref().unwrap();
    assert!(env.iter().any(|e| e.name == "API_KEY" && e.value.is_none()));
    // `docker exec -i web cmd` runs cmd in web's image.
    let poke = crons[1].spec.job_template.spec.as_ref().unwrap();
    let poke = &poke.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        poke.command.as_deref(),
        Some(&["/bin/poke".to_owned(), "--now".to_owned()][..])
    );
    assert!(
        m.not_mapped.iter().any(|n| n.contains("often")),
        "{:?}",
        m.not_mapped
    );
}

#[test]
fn schedules_a_cron_job_cannot_take_the_same_way_are_refused() {
    use super::super::cron::cron_schedule;
    for (schedule, five) in [
        ("30 2 * * *", "30 2 * * *"),
        ("@hourly", "@hourly"),
        ("0 */5 * * * *", "*/5 * * * *"),
        ("00 30 2 * * 1-5", "30 2 * * 1-5"),
        ("0 0 */2 * *", "0 0 */2 * *"),
        ("0 0 1 * 5", "0 0 1 * 5"),
        ("0 0 */1 * 1", "0 0 */1 * 1"),
    ] {
        assert_eq!(cron_schedule(schedule).as_deref(), Ok(five), "{schedule}");
    }
    for (schedule, why) in [
        ("*/5 * * * * *", "runs on seconds"),
        ("30 0 2 * * *", "runs on seconds"),
        ("0 0 0 * * * 2030", "takes five fields"),
        ("* * * *", "takes five fields"),
        ("0 0 */2 * 1", "stepped star"),
        ("0 0 1 * */2", "stepped star"),
    ] {
        let err = cron_schedule(schedule).unwrap_err();
        assert!(err.contains(why), "{schedule}: {err}");
    }
    let set = "web:\n  docker: {image: web, version: v1}\n  sidecars:\n    cron: {Tick: {schedule: \"*/5 * * * * *\", command: [\"/bin/true\"]}}\n";
    let err = manifest(set).unwrap_err();
    assert_eq!(err.place(), Some(("web", "cron")));
    assert!(
        err.to_string().contains("cron entry `Tick` of `web`"),
        "{err}"
    );
}

#[test]
fn two_variables_that_would_share_a_secret_key_are_refused() {
    let set = r#"
web:
  docker: {image: web, version: v1, environment: {"MY KEY": one, MY_KEY: two}}
"#;
    let err = manifest(set).unwrap_err();
    assert_eq!(err.place(), Some(("web", "environment")));
    assert!(
        err.to_string()
            .contains("`MY KEY` and `MY_KEY` would both be `MY_KEY` in the Secret"),
        "{err}"
    );
    let apart = "aa:\n  docker: {image: a, version: v1, environment: {\"MY KEY\": one}}\nbb:\n  docker: {image: b, version: v1, environment: {MY_KEY: two}}\n";
    assert!(matches!(
        manifest(apart),
        Err(super::Error::SecretKey { .. })
    ));
}

#[test]
fn secret_lists_keys_without_values() {
    let set = r#"
aa:
  docker: {image: a, version: v1, environment: [DB_PASSWORD=pw-one, SHARED_TOKEN=tok-same, PLAIN=x]}
bb:
  docker: {image: b, version: v1, environment: [DB_PASSWORD=pw-two, SHARED_TOKEN=tok-same]}
"#;
    let m = manifest(set).unwrap();
    let Object::Secret(secret) = &m.objects[0] else {
        panic!("the Secret comes first: {:?}", m.objects[0]);
    };
    let data = secret.string_data.as_ref().unwrap();
    let keys: Vec<_> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["SHARED_TOKEN", "aa.DB_PASSWORD", "bb.DB_PASSWORD"]);
    assert!(data.values().all(String::is_empty));
    let text = super::super::to_yaml(&m).unwrap();
    for value in ["pw-one", "pw-two", "tok-same"] {
        assert!(!text.contains(value), "{value} leaked:\n{text}");
    }
    assert!(text.contains("# Keys only"), "{text}");
}

/// A secret variable wherever the template put it: masked in every
/// object, in the form YAML writes it too (the value has a quote).
#[test]
fn secret_values_are_masked_in_every_field() {
    let token = r#"tok-"77"-e1"#;
    let set = r#"
web:
  docker:
    image: web
    version: v1
    command: ['run', '--token={{ API_TOKEN }}']
    labels: {auth: '{{ API_TOKEN }}'}
    environment: ['GREETING=hi {{ API_TOKEN }}', 'API_TOKEN={{ API_TOKEN }}']
  sidecars:
    cron:
      ping: {schedule: '* * * * *', command: 'ping {{ API_TOKEN }}'}
"#;
    let vars = Vars::new([("API_TOKEN".into(), token.into())], []);
    let set = serviceset::parse(Path::new("s.conf"), set, &vars).unwrap();
    let platform = Platform::parse(Path::new("p.yaml"), PLATFORM).unwrap();
    let expanded = expand(&set, "shop", &platform, &vars).unwrap();
    let graph = Graph::build(&expanded).unwrap();
    let m = build(&expanded, &graph, &Options::default()).unwrap();
    let text = super::super::to_yaml(&m).unwrap();
    for leak in [token, "77"] {
        assert!(!text.contains(leak), "{leak} leaked:\n{text}");
    }
    assert!(text.contains("--token=<masked>"), "{text}");
    assert!(text.contains("ping <masked>"), "{text}");
    assert!(
        text.contains("key: API_TOKEN"),
        "the secret key is a reference:\n{text}"
    );
}

#[test]
fn stop_signals_are_kubernetes_names() {
    use super::super::containers::stop_signal;
    assert_eq!(stop_signal("SIGINT").as_deref(), Some("SIGINT"));
    assert_eq!(stop_signal("quit").as_deref(), Some("SIGQUIT"));
    assert_eq!(stop_signal("15").as_deref(), Some("SIGTERM"));
    assert_eq!(stop_signal("SIGRTMIN+3").as_deref(), Some("SIGRTMIN+3"));
    assert_eq!(stop_signal("SIGNOPE"), None);
    assert_eq!(stop_signal("0"), None);
    let set = "web:\n  docker: {image: web, version: v1, stop_signal: SIGQUIT}\n";
    let spec = pod_spec(export(set).unwrap());
    let lifecycle = spec.containers[0].lifecycle.as_ref().unwrap();
    assert_eq!(lifecycle.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(
        spec.os.unwrap().name,
        "linux",
        "stopSignal needs the Pod's OS"
    );
}

#[test]
fn labels_become_labels_or_annotations() {
    let set = r#"
web:
  docker:
    image: web
    version: v1
    labels: {team: data, note: "has spaces", "bad key!": x}
"#;
    let m = manifest(set).unwrap();
    let Object::Deployment(d) = &m.objects[0] else {
        panic!("a Deployment")
    };
    let meta = d.spec.template.metadata.as_ref().unwrap();
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["team"], "data");
    assert_eq!(labels[LABEL_SERVICESET], "shop");
    assert_eq!(labels[super::super::LABEL_WORKLOAD], "shop");
    let annotations = meta.annotations.as_ref().unwrap();
    assert_eq!(annotations["note"], "has spaces");
    assert_eq!(
        annotations[super::super::ANNOTATION_CONTAINERS],
        "web: main"
    );
    assert!(m.not_mapped.iter().any(|n| n.contains("label bad key!")));
}

#[test]
fn names_labels_and_keys_follow_kubernetes_rules() {
    use super::super::names::{dns_label, is_label_key, is_label_value, secret_key};
    let cases = [
        ("VtctldPeriodicMonitoring", "vtctld-periodic-monitoring"),
        ("reports_nightly.v2", "reports-nightly-v2"),
        ("--x--", "x"),
    ];
    for (text, want) in cases {
        assert_eq!(dns_label(text, 52), want, "{text}");
    }
    assert_eq!(dns_label(&"a".repeat(80), 52).len(), 52);
    for key in ["team", "telefig.serviceset", "example.com/tier", "a_b.c-d"] {
        assert!(is_label_key(key), "{key}");
    }
    for key in [
        "",
        "bad key",
        "Example.com/x",
        "a/b/c",
        "-x",
        &"k".repeat(64),
    ] {
        assert!(!is_label_key(key), "{key}");
    }
    assert!(is_label_value("") && is_label_value("v1.2_3"));
    assert!(!is_label_value("has spaces") && !is_label_value("x-"));
    assert_eq!(secret_key("A$B.c-d"), "A_B.c-d");
}
