//! JSON shapes, modelled on the captured AWX 24.6 responses.

use super::model::{Job, Kind, Phase, State, Template, Token};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Django REST framework's datetime format: microseconds and a `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// Python's `json.dumps` layout (`", "`, `": "`, ASCII only), which is how AWX stores
/// `extra_vars`; clients that compare the string should see exactly that.
pub fn py_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_json(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_json).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(s) => py_str(s),
        other => other.to_string(),
    }
}

fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn org_summary(st: &State, t: &Template) -> Value {
    json!({"id": t.org_id, "name": st.orgs[(t.org_id - 1) as usize], "description": ""})
}

fn inventory_summary() -> Value {
    json!({"id": 1, "name": "Demo Inventory", "description": "", "has_active_failures": false,
           "total_hosts": 1, "hosts_with_active_failures": 0, "total_groups": 0,
           "has_inventory_sources": false, "total_inventory_sources": 0,
           "inventory_sources_with_failures": 0, "organization_id": 1, "kind": ""})
}

fn user_summary(st: &State, id: i64) -> Value {
    json!({"id": id, "username": st.username(id), "first_name": "", "last_name": ""})
}

pub fn template_json(st: &State, t: &Template) -> Value {
    let root = st.flavour.api_root();
    let s = &t.spec;
    let (kind, path) = match t.kind {
        Kind::Job => ("job_template", "job_templates"),
        Kind::Workflow => ("workflow_job_template", "workflow_job_templates"),
    };
    let url = format!("{root}{path}/{}/", t.id);
    let inventory = (!s.missing_inventory && t.kind == Kind::Job).then_some(1);
    let mut v = json!({
        "id": t.id, "type": kind, "url": url,
        "related": {
            "named_url": format!("{root}{path}/{}++{}/", s.name, s.organization),
            "organization": format!("{root}organizations/{}/", t.org_id),
            "launch": format!("{url}launch/"),
            "survey_spec": format!("{url}survey_spec/"),
        },
        "summary_fields": {
            "organization": org_summary(st, t),
            "user_capabilities": {"edit": true, "delete": true, "start": true, "schedule": true, "copy": true},
            "labels": {"count": 0, "results": []},
            "recent_jobs": [],
        },
        "created": ts(t.created), "modified": ts(t.created),
        "name": s.name, "description": "",
        "organization": t.org_id, "inventory": inventory,
        "extra_vars": "", "limit": "", "job_tags": "", "skip_tags": "", "scm_branch": "",
        "last_job_run": null, "last_job_failed": false, "next_job_run": null,
        "status": "never updated",
        "ask_scm_branch_on_launch": false,
        "ask_variables_on_launch": s.ask_variables_on_launch,
        "ask_limit_on_launch": s.ask_limit_on_launch,
        "ask_tags_on_launch": s.ask_tags_on_launch,
        "ask_skip_tags_on_launch": false,
        "ask_inventory_on_launch": s.ask_inventory_on_launch,
        "ask_labels_on_launch": false,
        "survey_enabled": !s.variables_needed.is_empty(),
        "allow_simultaneous": false,
        "webhook_service": "", "webhook_credential": null,
    });
    if t.kind == Kind::Job {
        let m = v.as_object_mut().unwrap();
        for (k, val) in [
            ("job_type", json!("run")),
            ("project", json!(1)),
            ("playbook", json!("hello.yml")),
            ("forks", json!(0)),
            ("verbosity", json!(0)),
            ("timeout", json!(0)),
            ("execution_environment", Value::Null),
            ("ask_diff_mode_on_launch", json!(false)),
            ("ask_job_type_on_launch", json!(false)),
            ("ask_verbosity_on_launch", json!(false)),
            (
                "ask_credential_on_launch",
                json!(s.ask_credential_on_launch),
            ),
            ("ask_execution_environment_on_launch", json!(false)),
            ("ask_forks_on_launch", json!(false)),
            ("ask_job_slice_count_on_launch", json!(false)),
            ("ask_timeout_on_launch", json!(false)),
            ("ask_instance_groups_on_launch", json!(false)),
            ("become_enabled", json!(false)),
            ("diff_mode", json!(false)),
            ("job_slice_count", json!(1)),
            ("custom_virtualenv", Value::Null),
            ("prevent_instance_group_fallback", json!(false)),
        ] {
            m.insert(k.into(), val);
        }
    }
    v
}

/// `GET .../launch/`: what the launch endpoint will prompt for.
pub fn launch_info(t: &Template) -> Value {
    let s = &t.spec;
    let data = json!({"id": t.id, "name": s.name, "description": ""});
    let mut v = json!({
        "can_start_without_user_input": s.variables_needed.is_empty() && !s.missing_inventory,
        "passwords_needed_to_start": [],
        "ask_variables_on_launch": s.ask_variables_on_launch,
        "ask_limit_on_launch": s.ask_limit_on_launch,
        "ask_inventory_on_launch": s.ask_inventory_on_launch,
        "ask_credential_on_launch": s.ask_credential_on_launch,
        "ask_tags_on_launch": s.ask_tags_on_launch,
        "survey_enabled": !s.variables_needed.is_empty(),
        "variables_needed_to_start": s.variables_needed,
        "credential_needed_to_start": false,
        "inventory_needed_to_start": s.missing_inventory,
        "job_template_data": data,
        "defaults": {"extra_vars": "", "limit": "", "job_tags": ""},
    });
    if t.kind == Kind::Workflow {
        v["workflow_job_template_data"] = v["job_template_data"].clone();
        v["node_templates_missing"] = json!([]);
        v["node_prompts_rejected"] = json!([]);
    }
    v
}

/// A job or workflow job as `GET jobs/{id}/` (or `workflow_jobs/{id}/`) returns it.
pub fn job_json(st: &State, j: &Job, now: DateTime<Utc>) -> Value {
    let p = st.phase_of(j, now);
    let mut v = job_json_at(st, j, &p);
    if j.kind == Kind::Job {
        v["event_processing_finished"] = json!(st.events_processed(&p, now));
    }
    v
}

pub fn job_json_at(st: &State, j: &Job, p: &Phase) -> Value {
    let root = st.flavour.api_root();
    let t = &st.templates[&j.template_id];
    let (kind, path, tpath) = match j.kind {
        Kind::Job => ("job", "jobs", "job_templates"),
        Kind::Workflow => ("workflow_job", "workflow_jobs", "workflow_job_templates"),
    };
    let url = format!("{root}{path}/{}/", j.id);
    let turl = format!("{root}{tpath}/{}/", t.id);
    let tsum = json!({"id": t.id, "name": t.spec.name, "description": ""});
    let mut v = json!({
        "id": j.id, "type": kind, "url": url,
        "related": {
            "created_by": format!("{root}users/{}/", j.launched_by),
            "labels": format!("{url}labels/"),
            "organization": format!("{root}organizations/{}/", t.org_id),
            "unified_job_template": turl,
            "activity_stream": format!("{url}activity_stream/"),
            "notifications": format!("{url}notifications/"),
            "cancel": format!("{url}cancel/"),
            "relaunch": format!("{url}relaunch/"),
        },
        "summary_fields": {
            "organization": org_summary(st, t),
            "unified_job_template": {"id": t.id, "name": t.spec.name, "description": "", "unified_job_type": kind},
            "created_by": user_summary(st, j.launched_by),
            "user_capabilities": {"delete": true, "start": true},
            "labels": {"count": 0, "results": []},
        },
        "created": ts(j.created), "modified": ts(p.finished.or(p.started).unwrap_or(j.created)),
        "name": t.spec.name, "description": "",
        "unified_job_template": t.id, "organization": t.org_id,
        "launch_type": "manual", "status": p.status, "failed": p.failed(),
        "started": opt_ts(p.started), "finished": opt_ts(p.finished),
        "canceled_on": if p.status == "canceled" { opt_ts(p.finished) } else { Value::Null },
        "elapsed": p.elapsed(),
        "job_explanation": "",
        "launched_by": {"id": j.launched_by, "name": st.username(j.launched_by), "type": "user",
                        "url": format!("{root}users/{}/", j.launched_by)},
        "extra_vars": j.extra_vars, "limit": j.limit, "inventory": j.inventory,
        "job_tags": j.job_tags, "skip_tags": "", "scm_branch": "",
        "allow_simultaneous": false, "webhook_service": "", "webhook_credential": null, "webhook_guid": "",
    });
    match j.kind {
        Kind::Job => {
            v["related"]["job_template"] = json!(turl);
            v["related"]["stdout"] = json!(format!("{url}stdout/"));
            v["related"]["job_events"] = json!(format!("{url}job_events/"));
            v["summary_fields"]["job_template"] = tsum;
            v["summary_fields"]["credentials"] = json!([]);
            if j.inventory.is_some() {
                v["summary_fields"]["inventory"] = inventory_summary();
            }
            let done = p.is_final();
            for (k, val) in [
                ("job_template", json!(t.id)),
                ("job_type", json!("run")),
                ("project", json!(1)),
                ("playbook", json!("hello.yml")),
                ("forks", json!(0)),
                ("verbosity", json!(0)),
                ("timeout", json!(0)),
                ("use_fact_cache", json!(false)),
                ("force_handlers", json!(false)),
                ("start_at_task", json!("")),
                ("execution_environment", json!(p.started.map(|_| 1))),
                ("job_args", json!("")),
                ("job_cwd", json!("")),
                ("job_env", json!({})),
                (
                    "execution_node",
                    json!(if p.started.is_some() { "fake" } else { "" }),
                ),
                (
                    "controller_node",
                    json!(if p.started.is_some() { "fake" } else { "" }),
                ),
                ("result_traceback", json!("")),
                ("event_processing_finished", json!(done)),
                ("work_unit_id", Value::Null),
                ("passwords_needed_to_start", json!([])),
                ("artifacts", json!({})),
                ("scm_revision", json!("")),
                ("instance_group", json!(p.started.map(|_| 1))),
                ("diff_mode", json!(false)),
                ("job_slice_number", json!(0)),
                ("job_slice_count", json!(1)),
                ("host_status_counts", Value::Null),
                ("playbook_counts", json!({"play_count": 0, "task_count": 0})),
                ("custom_virtualenv", Value::Null),
            ] {
                v[k] = val;
            }
        }
        Kind::Workflow => {
            v["related"]["workflow_job_template"] = json!(turl);
            v["related"]["workflow_nodes"] = json!(format!("{url}workflow_nodes/"));
            v["summary_fields"]["workflow_job_template"] = tsum;
            v["workflow_job_template"] = json!(t.id);
            v["job_template"] = Value::Null;
            v["is_sliced_job"] = json!(false);
        }
    }
    v
}

/// List views leave out the bulky fields, as AWX's list serializers do.
pub fn job_list_item(st: &State, j: &Job, now: DateTime<Utc>) -> Value {
    let mut v = job_json(st, j, now);
    if let Some(m) = v.as_object_mut() {
        for k in [
            "job_args",
            "job_cwd",
            "job_env",
            "result_traceback",
            "event_processing_finished",
            "artifacts",
        ] {
            m.remove(k);
        }
    }
    v
}

/// One row of `unified_jobs/`.
pub fn unified_summary(st: &State, j: &Job, now: DateTime<Utc>) -> Value {
    let p = st.phase_of(j, now);
    let root = st.flavour.api_root();
    let (kind, path) = match j.kind {
        Kind::Job => ("job", "jobs"),
        Kind::Workflow => ("workflow_job", "workflow_jobs"),
    };
    let name = st
        .templates
        .get(&j.template_id)
        .map(|t| t.spec.name.clone());
    json!({
        "id": j.id, "type": kind, "url": format!("{root}{path}/{}/", j.id),
        "name": name, "status": p.status, "failed": p.failed(),
        "created": ts(j.created), "started": opt_ts(p.started), "finished": opt_ts(p.finished),
        "elapsed": p.elapsed(), "unified_job_template": j.template_id, "launch_type": "manual",
    })
}

/// A personal token; `reveal` only in the creation response.
pub fn token_json(st: &State, t: &Token, base: &str, reveal: bool) -> Value {
    let url = format!("{base}{}/", t.id);
    let root = st.flavour.api_root();
    json!({
        "id": t.id, "type": "o_auth2_access_token", "url": url,
        "related": {"user": format!("{root}users/{}/", t.user_id), "activity_stream": format!("{url}activity_stream/")},
        "summary_fields": {"user": user_summary(st, t.user_id)},
        "created": ts(t.created), "modified": ts(t.created),
        "description": t.description, "user": t.user_id,
        "token": if reveal { t.key.clone() } else { "************".into() },
        "refresh_token": null, "application": t.application.as_ref().map(|_| 1),
        "expires": ts(t.expires), "scope": t.scope,
    })
}
