//! Templates, launches, jobs and the job lists the client polls.

use super::auth::Who;
use super::http::{paginate, Req, Resp};
use super::model::{Job, Kind, Phase, State};
use super::render::{self, py_json};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

pub fn list_templates(st: &State, r: &Req, kind: Kind) -> Resp {
    let items = st
        .templates
        .values()
        .filter(|t| t.kind == kind)
        .filter(|t| r.q("name").is_none_or(|n| t.spec.name == n))
        .filter(|t| {
            r.q("name__icontains")
                .is_none_or(|n| t.spec.name.to_lowercase().contains(&n.to_lowercase()))
        })
        .filter(|t| {
            r.q("organization__name")
                .is_none_or(|o| t.spec.organization == o)
        })
        .filter(|t| {
            r.q("organization")
                .is_none_or(|o| t.org_id.to_string() == o)
        })
        .filter(|t| r.q("id").is_none_or(|i| t.id.to_string() == i))
        .map(|t| render::template_json(st, t))
        .collect();
    paginate(r, items)
}

pub fn get_template(st: &State, kind: Kind, id: i64) -> Resp {
    match st.templates.get(&id).filter(|t| t.kind == kind) {
        Some(t) => Resp::json(200, render::template_json(st, t)),
        None => Resp::not_found(),
    }
}

pub fn launch(st: &mut State, r: &Req, who: &Who, kind: Kind, id: i64) -> Resp {
    let Some(t) = st.templates.get(&id).filter(|t| t.kind == kind) else {
        return Resp::not_found();
    };
    if r.method == "GET" {
        return Resp::json(200, render::launch_info(t));
    }
    let spec = t.spec.clone();
    let body = match r.json() {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut record = if body.is_object() {
        body.clone()
    } else {
        json!({})
    };
    record["template_id"] = json!(id);
    st.launches.push(record);
    if !st.user(who.user_id).is_some_and(|u| u.can_launch) {
        return Resp::forbidden();
    }
    let Some(body) = body.as_object() else {
        return Resp::json(
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary."]}),
        );
    };

    let vars = match parse_extra_vars(body.get("extra_vars")) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut ignored = Map::new();
    let mut errors = Map::new();
    // Without ask_variables_on_launch only survey answers get through.
    let (accepted, dropped): (Map<String, Value>, Map<String, Value>) = vars
        .into_iter()
        .partition(|(k, _)| spec.ask_variables_on_launch || spec.variables_needed.contains(k));
    if !dropped.is_empty() {
        ignored.insert("extra_vars".into(), Value::Object(dropped));
    }
    let missing: Vec<Value> = spec
        .variables_needed
        .iter()
        .filter(|v| !accepted.contains_key(*v))
        .map(|v| json!(format!("'{v}' value missing")))
        .collect();
    if !missing.is_empty() {
        errors.insert("variables_needed_to_start".into(), Value::Array(missing));
    }

    let mut take = |name: &str, allowed: bool| -> Option<Value> {
        let v = body.get(name)?.clone();
        if allowed {
            Some(v)
        } else {
            ignored.insert(name.into(), v);
            None
        }
    };
    let limit = take("limit", spec.ask_limit_on_launch);
    let inventory = take("inventory", spec.ask_inventory_on_launch);
    let _credentials = take("credentials", spec.ask_credential_on_launch);
    let job_tags = take("job_tags", spec.ask_tags_on_launch);
    // Prompts this fake never enables: always reported back as ignored.
    for name in [
        "skip_tags",
        "job_type",
        "verbosity",
        "diff_mode",
        "scm_branch",
        "forks",
        "timeout",
        "job_slice_count",
        "execution_environment",
        "labels",
        "instance_groups",
    ] {
        take(name, false);
    }
    let inventory = match inventory {
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok())),
        None if spec.missing_inventory || kind == Kind::Workflow => None,
        None => Some(1),
    };
    if spec.missing_inventory && inventory.is_none() {
        errors.insert(
            "resources_needed_to_start".into(),
            json!(["Job Template 'inventory' is missing or undefined."]),
        );
    }
    if !errors.is_empty() {
        return Resp::json(400, Value::Object(errors));
    }

    let job_id = st.next_job;
    st.next_job += 1;
    st.jobs_launched += 1;
    let as_text = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let job = Job {
        id: job_id,
        kind,
        template_id: id,
        created: Utc::now(),
        duration: st.job_duration,
        extra_vars: py_json(&Value::Object(accepted)),
        limit: as_text(limit),
        inventory,
        job_tags: as_text(job_tags),
        launched_by: who.user_id,
        forced: None,
    };
    // The launch response is rendered before the job has had any time to run.
    let mut out = render::job_json_at(st, &job, &Phase::pending());
    st.jobs.insert(job_id, job);
    let key = if kind == Kind::Job {
        "job"
    } else {
        "workflow_job"
    };
    out[key] = json!(job_id);
    out["ignored_fields"] = Value::Object(ignored);
    let location = out["url"].as_str().unwrap_or_default().to_string();
    Resp::json(201, out).with("Location", location)
}

/// `extra_vars` may be an object or a JSON string of one.
fn parse_extra_vars(v: Option<&Value>) -> Result<Map<String, Value>, Resp> {
    let bad = |why: String| {
        Resp::json(
            400,
            json!({"extra_vars": [format!("Cannot parse as JSON (error: {why}) or YAML (error: not supported by the fake).")]}),
        )
    };
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(bad("not a dictionary".into())),
            Err(e) => Err(bad(e.to_string())),
        },
        Some(_) => Err(bad("not a dictionary".into())),
    }
}

pub fn get_job(st: &State, kind: Kind, id: i64) -> Resp {
    match st.jobs.get(&id).filter(|j| j.kind == kind) {
        Some(j) => Resp::json(200, render::job_json(st, j, Utc::now())),
        None => Resp::not_found(),
    }
}

pub fn cancel(st: &mut State, r: &Req, kind: Kind, id: i64) -> Resp {
    let now = Utc::now();
    let Some(job) = st.jobs.get(&id).filter(|j| j.kind == kind) else {
        return Resp::not_found();
    };
    let outcome = st.outcome_of(id);
    let already = job.forced.as_ref().is_some_and(|p| p.status == "canceled");
    if r.method == "GET" {
        return Resp::json(200, json!({"can_cancel": !already}));
    }
    if already {
        return Resp::method_not_allowed("POST");
    }
    if let Some(job) = st.jobs.get_mut(&id) {
        job.force("canceled", &outcome, now);
    }
    Resp::empty(202)
}

/// AWX answers a text endpoint's 404 in plain text, a Python repr of the error.
const STDOUT_NOT_FOUND: &str =
    "{'detail': ErrorDetail(string='No Job matches the given query.', code='not_found')}";

/// Lines shown while a finished job's events are still being processed.
const UNPROCESSED_LINES: usize = 3;

pub fn stdout(st: &State, r: &Req, id: i64) -> Resp {
    let Some(job) = st.jobs.get(&id).filter(|j| j.kind == Kind::Job) else {
        return Resp::text(404, STDOUT_NOT_FOUND.to_string());
    };
    let now = Utc::now();
    let phase = st.phase_of(job, now);
    let lines = match phase.status.as_str() {
        "new" | "pending" | "waiting" => 0,
        "running" => 25,
        // Ended, but the output is not all saved yet: only the first lines.
        _ if !st.events_processed(&phase, now) => UNPROCESSED_LINES,
        _ => 50,
    };
    let mut text: String = (1..=lines)
        .map(|n| format!("TASK [step {n}] ********* ok: [web01] ... line {n}\n"))
        .collect();
    match phase.status.as_str() {
        _ if lines < 50 => {}
        "failed" | "error" => {
            text.push_str("fatal: [web01]: FAILED! => {\"msg\": \"fake failure\"}\n")
        }
        "successful" => text.push_str("web01 : ok=50 changed=0 unreachable=0 failed=0 skipped=0\n"),
        _ => {}
    }
    match r.q("format") {
        Some("json") => {
            let n = text.lines().count();
            Resp::json(
                200,
                json!({"range": {"start": 0, "end": n, "absolute_end": n}, "content": text}),
            )
        }
        _ => Resp::text(200, text),
    }
}

/// `extra_vars` is prevent-search in AWX: any filter on it, however spelled, is refused.
fn filters_extra_vars(r: &Req) -> bool {
    r.query.iter().any(|(k, _)| {
        let mut k = k.as_str();
        for prefix in ["or__", "not__", "chain__"] {
            k = k.strip_prefix(prefix).unwrap_or(k);
        }
        k.starts_with("extra_vars")
    })
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    // An unencoded '+' in a query arrives as a space.
    let s = s.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    let s = s.replace('+', "T");
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]
        .iter()
        .find_map(|f| {
            NaiveDateTime::parse_from_str(&s, f).ok().or_else(|| {
                chrono::NaiveDate::parse_from_str(&s, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        })
        .map(|t| t.and_utc())
}

fn ids(s: &str) -> Result<Vec<i64>, Resp> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| Resp::json(400, json!({"detail": format!("invalid id list: {s}")})))
}

/// `jobs/`, `workflow_jobs/` and `unified_jobs/` (kind None).
pub fn list_jobs(st: &State, r: &Req, kind: Option<Kind>) -> Resp {
    if filters_extra_vars(r) {
        return Resp::forbidden();
    }
    let now = Utc::now();
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, Resp> {
        match r.q(name) {
            None => Ok(None),
            Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                Resp::json(
                    400,
                    json!({"detail": format!("“{s}” value has an invalid format.")}),
                )
            }),
        }
    };
    let (gte, gt, lt) = match (
        time("created__gte"),
        time("created__gt"),
        time("created__lt"),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
    };
    let id_in = match r.q("id__in").map(ids).transpose() {
        Ok(v) => v,
        Err(e) => return e,
    };
    let template = r
        .q("job_template")
        .or(r.q("workflow_job_template"))
        .or(r.q("unified_job_template"));
    let status_in: Option<Vec<&str>> = r.q("status__in").map(|s| s.split(',').collect());
    let mut jobs: Vec<(&Job, Phase)> = st
        .jobs
        .values()
        .filter(|j| kind.is_none_or(|k| j.kind == k))
        .filter(|j| template.is_none_or(|t| j.template_id.to_string() == t))
        .filter(|j| r.q("id").is_none_or(|i| j.id.to_string() == i))
        .filter(|j| id_in.as_ref().is_none_or(|ids| ids.contains(&j.id)))
        .filter(|j| gte.is_none_or(|t| j.created >= t))
        .filter(|j| gt.is_none_or(|t| j.created > t))
        .filter(|j| lt.is_none_or(|t| j.created < t))
        .map(|j| (j, st.phase_of(j, now)))
        .filter(|(_, p)| r.q("status").is_none_or(|s| p.status == s))
        .filter(|(_, p)| {
            status_in
                .as_ref()
                .is_none_or(|l| l.contains(&p.status.as_str()))
        })
        .collect();
    if matches!(r.q("order_by"), Some("-id") | Some("-created")) {
        jobs.reverse();
    }
    let items = jobs
        .into_iter()
        .map(|(j, _)| match kind {
            Some(_) => render::job_list_item(st, j, now),
            None => render::unified_summary(st, j, now),
        })
        .collect();
    paginate(r, items)
}
