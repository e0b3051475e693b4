//! The deployment files under deploy/ stay valid: every YAML file parses, the Kubernetes
//! manifests keep their probes, hardening and wiring, the embedded and compose configurations
//! load (with the shipped mapping rules), the dashboard and alert rules use only metrics the
//! service exports, and the Dockerfile and systemd unit keep their essentials.
//!
//! Nothing here needs Docker, a cluster or a database.

use aap_bridge::config::Settings;
use aap_bridge::mapping::Mappings;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Metric names the service exports. Histograms also have `_bucket`, `_sum` and `_count`.
const COUNTERS_AND_GAUGES: &[&str] = &[
    "aap_bridge_events_received_total",
    "aap_bridge_signature_failures_total",
    "aap_bridge_launches_total",
    "aap_bridge_controller_requests_total",
    "aap_bridge_callback_attempts_total",
    "aap_bridge_requests_shed_total",
    "aap_bridge_queue_depth",
    "aap_bridge_launches",
    "aap_bridge_controller_token_age_seconds",
    "aap_bridge_up",
    "aap_bridge_database_up",
    "aap_bridge_controller_health",
    "aap_bridge_rule_paused",
    "aap_bridge_launches_held_total",
    "aap_bridge_catch_up_missing_total",
    "aap_bridge_catch_up_redeliveries_total",
    "aap_bridge_catch_up_records_total",
    "aap_bridge_catch_up_passes_total",
];
const HISTOGRAMS: &[&str] = &[
    "aap_bridge_dispatch_latency_seconds",
    "aap_bridge_controller_request_duration_seconds",
];

/// PromQL functions, aggregations and keywords the dashboard and rules may use.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "topk",
    "bottomk",
    "rate",
    "irate",
    "increase",
    "delta",
    "deriv",
    "histogram_quantile",
    "absent",
    "absent_over_time",
    "clamp_min",
    "clamp_max",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "vector",
    "scalar",
    "time",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_WORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

const SECRET_DIR: &str = "/var/run/secrets/aap-bridge/";

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

/// The documents of a (possibly multi-document) YAML text, split on `---` lines. Documents that
/// hold only comments are skipped.
fn documents(path: &Path, text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |chunk: &str| {
        let meaningful = chunk
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if meaningful {
            let value: Value = serde_saphyr::from_str(chunk)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()));
            docs.push(value);
        }
    };
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            flush(&current);
            current.clear();
        } else {
            current.push_str(line);
        }
    }
    flush(&current);
    docs
}

fn kubernetes_objects() -> Vec<Value> {
    let mut files = Vec::new();
    yaml_files(Path::new("deploy/kubernetes"), &mut files);
    files.sort();
    files.iter().flat_map(|f| documents(f, &read(f))).collect()
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} named {name} in deploy/kubernetes"))
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// Metric names in a PromQL expression: identifiers outside label matchers, strings, ranges and
/// `by (...)` lists that are not functions or keywords.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut label_list_next = false;
    let mut i = 0;
    let skip_until = |mut i: usize, close: char| -> usize {
        while i < chars.len() && chars[i] != close {
            if chars[i] == '"' || chars[i] == '\'' {
                let quote = chars[i];
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i + 1
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let label_list = std::mem::take(&mut label_list_next);
        match c {
            '"' | '\'' | '`' => i = skip_until(i + 1, c),
            '{' => i = skip_until(i + 1, '}'),
            '[' => i = skip_until(i + 1, ']'),
            '(' if label_list => i = skip_until(i + 1, ')'),
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if LABEL_LIST_WORDS.contains(&word.as_str()) {
                    label_list_next = true;
                } else if !PROMQL_WORDS.contains(&word.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn known_metric(name: &str) -> bool {
    COUNTERS_AND_GAUGES.contains(&name)
        || HISTOGRAMS.iter().any(|h| {
            name.strip_prefix(h)
                .is_some_and(|rest| matches!(rest, "_bucket" | "_sum" | "_count"))
        })
}

/// Metric names written as string literals in the service's sources (`"aap_bridge_…"`).
fn metrics_in_sources() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = read(&path);
                for (at, _) in text.match_indices("\"aap_bridge_") {
                    let rest = &text[at + 1..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                        .unwrap_or(rest.len());
                    if rest[end..].starts_with('"') {
                        out.insert(rest[..end].to_string());
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(Path::new("src"), &mut out);
    out
}

fn assert_known_metrics(expr: &str, whose: &str) -> Vec<String> {
    let names = metric_names(expr);
    assert!(!names.is_empty(), "{whose}: no metric in `{expr}`");
    let implemented = metrics_in_sources();
    for name in &names {
        assert!(
            known_metric(name),
            "{whose}: `{name}` is not a metric aap-bridge exports (or an unknown PromQL word) in `{expr}`"
        );
        let base = HISTOGRAMS
            .iter()
            .find(|h| name.starts_with(*h))
            .map_or(name.as_str(), |h| h);
        assert!(
            implemented.contains(base),
            "{whose}: `{base}` is not recorded anywhere under src/"
        );
    }
    names
}

/// Fills in the Secret template's keys with test values and writes each to a file named after
/// its key, as the kubelet mounts it. The template ships empty values, never working ones.
fn mount_secret(objects: &[Value], dir: &Path) -> BTreeMap<String, String> {
    let secret = object(objects, "Secret", "aap-bridge-secrets");
    let data = secret["stringData"]
        .as_object()
        .expect("the Secret uses stringData");
    let mut values = BTreeMap::new();
    for (key, value) in data {
        assert_eq!(
            str_of(value, key),
            "",
            "secret.example.yaml `{key}` must stay empty"
        );
        let value = match key.as_str() {
            "database-url" => "postgres://aap_bridge:pw@db.example.internal:5432/aap_bridge".into(),
            _ => format!("deploy-test-{key}-0f3a9c27d1e84b65"),
        };
        std::fs::write(dir.join(key), format!("{value}\n")).unwrap();
        values.insert(key.clone(), value);
    }
    values
}

fn source_kinds(settings: &Settings) -> aap_bridge::mapping::Known {
    aap_bridge::startup::source_kinds(settings)
}

fn load_mappings(path: &Path, settings: &Settings) -> Mappings {
    Mappings::load(path, &source_kinds(settings)).unwrap_or_else(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("mapping rules do not load:\n{}", text.join("\n"))
    })
}

/// A stop timeout must cover `pre` seconds before SIGTERM, the drain and the grace, plus 5 s.
fn assert_stop_budget(what: &str, secs: u64, pre: u64, settings: &Settings) {
    let (drain, grace) = (
        settings.server.drain_secs,
        settings.server.shutdown_grace_secs,
    );
    assert!(
        secs >= pre + drain + grace + 5,
        "{what} {secs} must be at least preStop {pre} + drain_secs {drain} + shutdown_grace_secs {grace} + 5"
    );
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let mut files = Vec::new();
    yaml_files(Path::new("deploy"), &mut files);
    assert!(
        files.len() >= 8,
        "expected the deploy files, found {files:?}"
    );
    for f in &files {
        let docs = documents(f, &read(f));
        assert!(!docs.is_empty(), "{}: no YAML document", f.display());
    }
}

#[test]
fn deployment_is_probed_hardened_and_wired() {
    let objects = kubernetes_objects();
    let deploy = object(&objects, "Deployment", "aap-bridge");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["startupProbe"]["httpGet"]["path"].is_string());
    assert_eq!(c["ports"][0]["containerPort"], 8080);

    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(
        pod["topologySpreadConstraints"].is_array()
            || pod["affinity"]["podAntiAffinity"].is_object(),
        "replicas are spread across nodes"
    );

    // The grace period covers a preStop sleep (if any), the drain and the stop, with a margin.
    let config = kubernetes_config_text(&objects);
    let settings = load_kubernetes_config(&objects, &config).0;
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = &c["lifecycle"]["preStop"];
    let pre_stop_secs = pre_stop["sleep"]["seconds"].as_u64().unwrap_or(0);
    assert!(
        pre_stop.is_null() || pre_stop["sleep"].is_object(),
        "preStop may only sleep (the image has no shell to run): {pre_stop}"
    );
    assert_stop_budget(
        "terminationGracePeriodSeconds",
        grace,
        pre_stop_secs,
        &settings,
    );

    let annotations = &deploy["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations["prometheus.io/port"], "8080");

    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (str_of(&e["name"], "env name"), e))
        .collect();
    assert_eq!(
        env["AAP_BRIDGE_CONFIG"]["value"],
        "/etc/aap-bridge/config.yaml"
    );
    let db = &env["AAP_BRIDGE__DATABASE__URL"]["valueFrom"]["secretKeyRef"];
    assert_eq!(db["name"], "aap-bridge-secrets");
    assert_eq!(db["key"], "database-url");

    // Mounts: where each volume lands, and what backs it.
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (str_of(&v["name"], "volume name"), v))
        .collect();
    let mounts: BTreeMap<&str, &Value> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (str_of(&m["mountPath"], "mountPath"), m))
        .collect();
    let backing = |path: &str| volumes[str_of(&mounts[path]["name"], "mount name")];
    assert_eq!(
        backing("/etc/aap-bridge")["configMap"]["name"],
        "aap-bridge-config"
    );
    assert_eq!(
        backing("/app/mappings")["configMap"]["name"],
        "aap-bridge-mappings"
    );
    assert_eq!(
        backing(SECRET_DIR.trim_end_matches('/'))["secret"]["secretName"],
        "aap-bridge-secrets"
    );
    assert_eq!(mounts[SECRET_DIR.trim_end_matches('/')]["readOnly"], true);
}

#[test]
fn service_pdb_and_kustomization_fit_the_deployment() {
    let objects = kubernetes_objects();
    let deploy = object(&objects, "Deployment", "aap-bridge");
    let selector = &deploy["spec"]["selector"]["matchLabels"];
    let pod_labels = &deploy["spec"]["template"]["metadata"]["labels"];
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "the selector matches the pod labels");
    }

    let pdb = object(&objects, "PodDisruptionBudget", "aap-bridge");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);

    let svc = object(&objects, "Service", "aap-bridge");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(&svc["spec"]["selector"], selector);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    let target = &svc["spec"]["ports"][0]["targetPort"];
    assert!(
        *target == 8080 || *target == "http",
        "the Service targets the container port: {target}"
    );

    // The kustomization lists exactly the manifests in the directory.
    let kustomization = documents(
        Path::new("kustomization.yaml"),
        &read("deploy/kubernetes/kustomization.yaml"),
    );
    let listed: BTreeSet<&str> = kustomization[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| str_of(r, "resource"))
        .collect();
    let mut files = Vec::new();
    yaml_files(Path::new("deploy/kubernetes"), &mut files);
    let present: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|f| f != "kustomization.yaml")
        // A template with empty values; applying it by default would ship no real secret.
        .filter(|f| f != "secret.example.yaml")
        .collect();
    let present: BTreeSet<&str> = present.iter().map(String::as_str).collect();
    assert_eq!(listed, present, "kustomization.yaml resources");
}

fn kubernetes_config_text(objects: &[Value]) -> String {
    let cm = object(objects, "ConfigMap", "aap-bridge-config");
    str_of(&cm["data"]["config.yaml"], "config.yaml").to_string()
}

/// Loads the ConfigMap's config.yaml with the Secret mounted in a temporary directory.
fn load_kubernetes_config(objects: &[Value], config: &str) -> (Settings, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    mount_secret(objects, dir.path());
    let text = config.replace(SECRET_DIR, &format!("{}/", dir.path().display()));
    let settings = Settings::from_parts(Some(&text), None, false)
        .unwrap_or_else(|e| panic!("deploy/kubernetes/configmap.yaml config.yaml: {e}"));
    (settings, dir)
}

#[test]
fn kubernetes_config_loads_with_the_secret_and_mappings_mounted() {
    let objects = kubernetes_objects();
    let config = kubernetes_config_text(&objects);

    // Every secret file the config reads is a key of the Secret.
    let secret_keys: BTreeSet<String> = mount_secret(&objects, tempfile::tempdir().unwrap().path())
        .into_keys()
        .collect();
    for (n, line) in config.lines().enumerate() {
        if let Some((_, rest)) = line.split_once(SECRET_DIR) {
            let key = rest.split(|c: char| c.is_whitespace() || c == ']').next();
            let key = key.unwrap_or_default();
            assert!(
                secret_keys.contains(key),
                "config.yaml line {}: `{key}` is not a key of Secret aap-bridge-secrets",
                n + 1
            );
        }
    }
    for key in [
        "github-webhook-secret",
        "pagerduty-webhook-secret",
        "servicenow-webhook-secret",
        "controller-password",
        "github-token",
        "pagerduty-api-key",
        "servicenow-password",
        "admin-token",
        "database-url",
    ] {
        assert!(secret_keys.contains(key), "Secret key {key}");
    }

    let (settings, _dir) = load_kubernetes_config(&objects, &config);
    assert_eq!(settings.log.format, aap_bridge::config::LogFormat::Json);
    let controller = settings.controller.as_ref().expect("controller section");
    assert_eq!(controller.auth.mode(), "password");
    let kinds: BTreeSet<&str> = settings.sources.keys().map(String::as_str).collect();
    assert_eq!(kinds, BTreeSet::from(["github", "pagerduty", "servicenow"]));
    assert!(settings.sources.values().all(|s| s.reply.is_some()));
    aap_bridge::notify::Notifier::new(&settings.sources).expect("reply clients build");
    assert_eq!(settings.mappings.path, Path::new("/app/mappings"));

    // The mappings ConfigMap, mounted as files, validates against these sources.
    let mappings = object(&objects, "ConfigMap", "aap-bridge-mappings");
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in mappings["data"].as_object().unwrap() {
        std::fs::write(dir.path().join(name), str_of(text, name)).unwrap();
    }
    let loaded = load_mappings(dir.path(), &settings);
    assert!(loaded.len() >= 3);
}

#[test]
fn mappings_configmap_is_a_copy_of_the_mapping_files() {
    let objects = kubernetes_objects();
    let cm = object(&objects, "ConfigMap", "aap-bridge-mappings");
    let data = cm["data"].as_object().unwrap();
    let mut files = Vec::new();
    yaml_files(Path::new("mappings"), &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let keys: BTreeSet<String> = data.keys().cloned().collect();
    assert_eq!(
        keys, names,
        "aap-bridge-mappings holds every mappings/*.yaml"
    );
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert_eq!(
            str_of(&data[name.as_ref()], &name),
            read(f),
            "deploy/kubernetes/configmap.yaml `{name}` differs from {}; copy it again",
            f.display()
        );
    }
}

#[test]
fn compose_config_loads_and_validates_the_shipped_mappings() {
    let raw = read("deploy/compose-config.yaml");
    // No placeholder defaults: each secret comes from a variable compose requires.
    assert!(
        !raw.contains(":-"),
        "compose-config.yaml has no `${{NAME:-default}}`"
    );
    let mut text = raw.clone();
    for var in [
        "GITHUB_WEBHOOK_SECRET",
        "SERVICENOW_WEBHOOK_SECRET",
        "PAGERDUTY_WEBHOOK_SECRET",
        "AAP_BRIDGE_ADMIN_TOKEN",
    ] {
        let reference = format!("${{{var}}}");
        assert!(
            raw.contains(&reference),
            "compose-config.yaml reads {reference}"
        );
        text = text.replace(&reference, &format!("compose-test-{var}-7d2e91b4"));
    }
    let settings = Settings::from_parts(Some(&text), None, false)
        .unwrap_or_else(|e| panic!("deploy/compose-config.yaml: {e}"));
    assert!(
        settings.controller.is_none(),
        "compose runs in dry-run mode"
    );
    assert_eq!(settings.log.format, aap_bridge::config::LogFormat::Json);
    assert_eq!(settings.mappings.path, Path::new("/app/mappings"));
    let kinds: BTreeSet<&str> = settings.sources.keys().map(String::as_str).collect();
    assert_eq!(kinds, BTreeSet::from(["github", "pagerduty", "servicenow"]));
    // /app/mappings is the repository's mappings/ mounted into the container.
    load_mappings(Path::new("mappings"), &settings);

    let compose = &documents(Path::new("compose.yaml"), &read("deploy/compose.yaml"))[0];
    let services = &compose["services"];
    assert!(services["postgres"]["healthcheck"]["test"].is_array());
    let bridge = &services["aap-bridge"];
    assert_eq!(bridge["build"]["context"], "..");
    assert_eq!(bridge["build"]["dockerfile"], "deploy/Dockerfile");
    assert_eq!(
        bridge["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    for var in [
        "GITHUB_WEBHOOK_SECRET",
        "SERVICENOW_WEBHOOK_SECRET",
        "PAGERDUTY_WEBHOOK_SECRET",
        "AAP_BRIDGE_ADMIN_TOKEN",
    ] {
        let value = str_of(&bridge["environment"][var], var);
        assert!(
            value.starts_with(&format!("${{{var}:?")),
            "compose.yaml requires {var} (`${{{var}:?message}}`), not {value}"
        );
    }
    assert!(bridge["environment"]["AAP_BRIDGE__DATABASE__URL"]
        .as_str()
        .unwrap()
        .contains("@postgres:5432/"));
    let volumes: Vec<&str> = bridge["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| str_of(v, "volume"))
        .collect();
    assert!(volumes.contains(&"./compose-config.yaml:/etc/aap-bridge/config.yaml:ro"));
    assert!(volumes.contains(&"../mappings:/app/mappings:ro"));
    let stop = str_of(&bridge["stop_grace_period"], "stop_grace_period");
    let stop: u64 = stop.trim_end_matches('s').parse().expect("seconds");
    assert_stop_budget("stop_grace_period", stop, 0, &settings);
}

#[test]
fn grafana_dashboard_queries_only_exported_metrics() {
    let dash: Value =
        serde_json::from_str(&read("deploy/grafana-dashboard.json")).expect("dashboard JSON");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );

    fn exprs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        _ => exprs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(all.len() >= 10, "dashboard queries: {}", all.len());
    let mut used = BTreeSet::new();
    for e in &all {
        used.extend(assert_known_metrics(e, "grafana-dashboard.json"));
    }
    for metric in [
        "aap_bridge_events_received_total",
        "aap_bridge_signature_failures_total",
        "aap_bridge_queue_depth",
        "aap_bridge_dispatch_latency_seconds_bucket",
        "aap_bridge_launches",
        "aap_bridge_controller_requests_total",
        "aap_bridge_controller_request_duration_seconds_bucket",
        "aap_bridge_callback_attempts_total",
        "aap_bridge_controller_token_age_seconds",
    ] {
        assert!(used.contains(metric), "the dashboard shows {metric}");
    }
}

#[test]
fn prometheus_rules_are_complete_and_use_exported_metrics() {
    let path = Path::new("deploy/prometheus-rules.yaml");
    let doc = &documents(path, &read(path))[0];
    let groups = doc["groups"].as_array().expect("groups");
    let mut alerts = BTreeMap::new();
    for g in groups {
        assert!(g["name"].is_string());
        for rule in g["rules"].as_array().expect("rules") {
            let name = str_of(&rule["alert"], "alert").to_string();
            let expr = str_of(&rule["expr"], &name);
            assert!(rule["for"].is_string(), "{name}: `for`");
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            assert!(
                !str_of(&rule["annotations"]["summary"], &name).is_empty(),
                "{name}: annotations.summary"
            );
            let metrics = assert_known_metrics(expr, &name);
            assert!(
                alerts
                    .insert(name.clone(), (expr.to_string(), metrics))
                    .is_none(),
                "duplicate alert {name}"
            );
        }
    }
    // One alert at least for each condition the operators asked for.
    let covered = |metric: &str, needle: &str| {
        alerts
            .values()
            .any(|(e, m)| m.iter().any(|x| x == metric) && e.contains(needle))
    };
    assert!(covered("aap_bridge_up", "absent"), "service down");
    assert!(covered("aap_bridge_signature_failures_total", ""));
    assert!(covered("aap_bridge_queue_depth", "events_pending"));
    assert!(covered("aap_bridge_launches_total", "unknown"));
    assert!(covered("aap_bridge_callback_attempts_total", "dead"));
    assert!(covered("aap_bridge_controller_requests_total", "error"));
    assert!(covered(
        "aap_bridge_dispatch_latency_seconds_bucket",
        "histogram_quantile"
    ));
    assert!(covered("aap_bridge_controller_token_age_seconds", ""));
    assert!(covered("aap_bridge_rule_paused", "rule"), "a paused rule");
    assert!(
        covered("aap_bridge_launches_held_total", "rule"),
        "held launches"
    );
}

#[test]
fn promql_scanner_finds_metrics_and_skips_the_rest() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, source) (rate(foo_bucket{a="}b", c=~"x|y"}[$__rate_interval]))) > 358 * 86400 unless bar offset 1h"#,
    );
    assert_eq!(names, ["foo_bucket", "bar"]);
    assert!(known_metric("aap_bridge_dispatch_latency_seconds_count"));
    assert!(!known_metric("aap_bridge_dispatch_latency_seconds_total"));
    assert!(!known_metric("up"));
}

/// Dockerfile instructions with their arguments, continuation lines joined.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (instr, args) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        out.push((instr.to_ascii_uppercase(), args.trim().to_string()));
        pending.clear();
    }
    out
}

#[test]
fn dockerfile_builds_in_stages_and_runs_unprivileged() {
    let text = read("deploy/Dockerfile");
    let instructions = dockerfile_instructions(&text);
    let all = |name: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert!(all("FROM").len() >= 2, "a build and a runtime stage");
    let users = all("USER");
    let user = users.last().expect("a USER instruction");
    assert!(
        !["root", "0", "0:0", "root:root"].contains(user),
        "the image runs as a non-root user, not `{user}`"
    );
    let health = all("HEALTHCHECK");
    assert!(
        health
            .iter()
            .any(|h| h.contains("aap-bridge") && h.contains("\"health\"")),
        "HEALTHCHECK runs `aap-bridge health`: {health:?}"
    );
    assert!(all("ENTRYPOINT")
        .iter()
        .any(|e| e.contains("/usr/local/bin/aap-bridge")));
    assert!(all("EXPOSE").contains(&"8080"));
    assert!(all("ENV")
        .iter()
        .any(|e| e.contains("AAP_BRIDGE_CONFIG=/etc/aap-bridge/config.yaml")));
    assert!(
        all("RUN").iter().any(
            |r| r.contains("cargo build --release --locked --bin aap-bridge")
                && r.contains("objcopy --strip-debug")
        ),
        "the image's binary goes without its debug info (split into aap-bridge.debug)"
    );
    let stages = all("FROM");
    assert!(
        stages.last().is_some_and(|s| s.ends_with("AS runtime")),
        "the runtime stage is the default target: {stages:?}"
    );

    // Everything copied from the build context exists (the context is the repository root).
    for args in all("COPY") {
        if args.contains("--from=") {
            continue;
        }
        let parts: Vec<&str> = args
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        for src in &parts[..parts.len() - 1] {
            assert!(
                Path::new(src).exists(),
                "COPY {src}: not in the build context"
            );
        }
    }
    let ignore = read(".dockerignore");
    assert!(ignore
        .lines()
        .any(|l| l.trim().trim_end_matches('/') == "target"));
}

#[test]
fn systemd_unit_starts_reloads_and_loads_credentials() {
    let text = read("deploy/aap-bridge.service");
    let value = |key: &str| -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    let exec = value("ExecStart");
    assert_eq!(exec.len(), 1);
    assert!(exec[0].starts_with("/usr/local/bin/aap-bridge "));
    assert!(exec[0].ends_with(" serve"));
    assert!(value("ExecReload")[0].contains("-HUP $MAINPID"));
    assert_eq!(value("User"), ["aap-bridge"]);
    assert_eq!(value("KillSignal"), ["SIGTERM"]);
    // The unit's config does not set the shutdown keys, so the defaults apply.
    let stop: u64 = value("TimeoutStopSec")[0].parse().expect("seconds");
    let defaults = Settings::from_parts(None, None, false).unwrap();
    assert_stop_budget("TimeoutStopSec", stop, 0, &defaults);
    assert_eq!(
        value("Restart"),
        ["on-failure"],
        "a dead task exits non-zero"
    );
    assert!(value("LoadCredential").len() >= 3);
    assert_eq!(value("NoNewPrivileges"), ["yes"]);
    assert_eq!(value("ProtectSystem"), ["strict"]);
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(text.lines().any(|l| l == section), "{section}");
    }
}
