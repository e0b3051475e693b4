//! `bench explain`: the plan of each hot query, on a fresh database holding a few thousand
//! representative rows after ANALYZE (README "Hot queries and their plans").
//!
//! The statements are copies of the ones in `src/store` and `src/workers/retention.rs`, with
//! their parameters given as literals through PREPARE / EXPLAIN EXECUTE. Keep them in step.

use sqlx::migrate::MigrateDatabase;

pub async fn run(server_url: &str) -> anyhow::Result<()> {
    let db_url = crate::database_url(server_url, "explain")?;
    sqlx::Postgres::create_database(&db_url).await?;
    let result = explain_all(&db_url).await;
    sqlx::Postgres::force_drop_database(&db_url).await.ok();
    result
}

async fn explain_all(db_url: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(db_url).await?;
    aap_bridge::store::MIGRATOR.run(&pool).await?;
    sqlx::raw_sql(ROWS).execute(&pool).await?;
    let mut conn = pool.acquire().await?;
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM launches),
                (SELECT count(*) FROM callbacks)",
    )
    .fetch_one(&mut *conn)
    .await?;
    println!(
        "-- {} events, {} launches, {} callbacks, after ANALYZE",
        counts.0, counts.1, counts.2
    );
    for (title, sql, args) in QUERIES {
        sqlx::raw_sql(&format!("PREPARE q AS {sql}"))
            .execute(&mut *conn)
            .await?;
        // EXECUTE takes no subqueries: each argument is evaluated first, then passed as a
        // literal that EXECUTE coerces to the parameter's type.
        let mut values = Vec::new();
        for arg in args.iter() {
            let v: String = sqlx::query_scalar(&format!("SELECT quote_nullable(({arg})::text)"))
                .fetch_one(&mut *conn)
                .await?;
            values.push(v);
        }
        let values = values.join(", ");
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN (COSTS OFF) EXECUTE q({values})"))
                .fetch_all(&mut *conn)
                .await?;
        sqlx::raw_sql("DEALLOCATE q").execute(&mut *conn).await?;
        println!("\n-- {title}");
        for line in plan {
            println!("{line}");
        }
    }
    conn.close().await?;
    pool.close().await;
    Ok(())
}

/// 20,000 events over 60 days (a few pending), a launch for every fourth (a few planned,
/// launching, launched, some coalesced into another), a callback per settled launch, 2,000
/// pruned dedupe keys, one paused rule.
const ROWS: &str = "
INSERT INTO events (id, source, kind, delivery_id, dedupe_key, event_type, category, payload,
                    received_at, state)
SELECT gen_random_uuid(), 'gh', 'github', 'd' || g, 'sha256:' || md5(g::text), 'issues.labeled',
       'disk_full', '{\"action\": \"labeled\"}', now() - make_interval(secs => (20000 - g) * 260),
       CASE WHEN g > 19950 THEN 'pending' WHEN g % 4 = 0 THEN 'dispatched' ELSE 'unmapped' END
FROM generate_series(1, 20000) g;
INSERT INTO launches (id, event_id, rule, source, kind, template_kind, request, reply, state,
                      next_attempt_at, lease_until, launched_at, job_id, created_at)
SELECT gen_random_uuid(), e.id, 'rule-' || (n % 5), 'gh', 'github', 'job', '{}', 'none',
       CASE WHEN n > 4960 THEN 'planned' WHEN n > 4940 THEN 'launching'
            WHEN n > 4900 THEN 'launched' WHEN n % 10 = 0 THEN 'coalesced' ELSE 'finished' END,
       e.received_at, CASE WHEN n > 4940 THEN now() + interval '1 minute' END,
       e.received_at, n, e.received_at
FROM (SELECT id, received_at, row_number() OVER (ORDER BY received_at) AS n
      FROM events WHERE state = 'dispatched') e;
UPDATE launches l SET coalesced_into = (SELECT id FROM launches WHERE state = 'finished' LIMIT 1)
WHERE state = 'coalesced';
INSERT INTO callbacks (id, launch_id, event_id, source, phase, request, state, next_attempt_at,
                       created_at)
SELECT gen_random_uuid(), l.id, l.event_id, 'gh', 'launched', '{}',
       CASE WHEN l.state = 'launched' THEN 'pending' ELSE 'sent' END, l.created_at, l.created_at
FROM launches l WHERE l.state IN ('finished', 'launched');
INSERT INTO dedupe (source, dedupe_key, first_seen, event_id)
SELECT 'gh', 'pruned-' || g, now() - make_interval(days => 100 - g / 100), gen_random_uuid()
FROM generate_series(1, 2000) g;
INSERT INTO rule_pauses (rule, paused_at, paused_by) VALUES ('rule-9', now(), 'operator');
ANALYZE;
";

const QUERIES: &[(&str, &str, &[&str])] = &[
    (
        "ingest: the group-commit insert (store::events::insert_batch), 64 events",
        aap_bridge::store::events::INSERT_EVENTS,
        // The events' 16 arrays of 64 elements, then the launches' 13, empty.
        INSERT_ARGS,
    ),
    (
        "dispatcher: claim (store::dispatch::claim), dispatch_batch 200",
        aap_bridge::store::dispatch::CLAIM,
        &["200"],
    ),
    (
        "dispatcher: settle (store::dispatch::settle), per pending event",
        "UPDATE events SET state = $2, state_reason = $3, decision = $4, rules_version = $5,
             updated_at = now()
         WHERE id = $1",
        &[
            "(SELECT id FROM events WHERE state = 'pending' LIMIT 1)",
            "'unmapped'",
            "'no rule'",
            "'{}'",
            "'5ca72cc2c554'",
        ],
    ),
    (
        "launcher: claim_planned, one statement (launch::sql::fence)",
        aap_bridge::launch::sql::fence::CLAIM_PLANNED,
        &["8", "'me'", "true", "60", "'default'"],
    ),
    (
        "launcher: claim_stale (launch::sql::fence)",
        "UPDATE launches SET owner = $3, lease_until = now() + make_interval(secs => $2),
             updated_at = now()
         WHERE id IN (SELECT id FROM launches WHERE state = 'launching' AND lease_until < now()
                      ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id",
        &["8", "60", "'me'"],
    ),
    (
        "notifier: claim_due (postback::sql)",
        aap_bridge::postback::sql::CLAIM_DUE,
        &["16", "30"],
    ),
    (
        "tracker: the launched jobs to poll (launch::sql::rows::launched)",
        "SELECT id, job_id, job_status, missing_polls FROM launches
         WHERE state = 'launched' AND job_id IS NOT NULL ORDER BY launched_at LIMIT $1",
        &["1000"],
    ),
    (
        "retention: events (workers::retention EVENTS), 30 days, batch 1000",
        aap_bridge::workers::retention::EVENTS,
        &["30", "1000"],
    ),
    (
        "retention: the cascade per deleted event, callbacks (callbacks.event_id ON DELETE CASCADE)",
        "DELETE FROM ONLY callbacks WHERE event_id = $1",
        &["(SELECT event_id FROM callbacks LIMIT 1)"],
    ),
    (
        "retention: the cascade per deleted event, launches (launches.event_id ON DELETE CASCADE)",
        "DELETE FROM ONLY launches WHERE event_id = $1",
        &["(SELECT event_id FROM launches LIMIT 1)"],
    ),
    (
        "retention: per deleted launch (launches.coalesced_into ON DELETE SET NULL)",
        "UPDATE ONLY launches SET coalesced_into = NULL WHERE coalesced_into = $1",
        &["(SELECT id FROM launches WHERE state = 'finished' LIMIT 1)"],
    ),
    (
        "retention: per deleted event (events.replay_of ON DELETE SET NULL)",
        "UPDATE ONLY events SET replay_of = NULL WHERE replay_of = $1",
        &["(SELECT id FROM events LIMIT 1)"],
    ),
    (
        "retention: pruned dedupe keys (workers::retention DEDUPE), 90 days, batch 1000",
        "WITH gone AS (
             DELETE FROM dedupe WHERE (source, dedupe_key) IN (
                 SELECT d.source, d.dedupe_key FROM dedupe d
                 WHERE d.first_seen < now() - make_interval(days => $1)
                 LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING 1)
         SELECT count(*) FROM gone",
        &["90", "1000"],
    ),
];

const INSERT_ARGS: &[&str] = &[
    "ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 64))",
    "array_fill('gh'::text, ARRAY[64])",
    "array_fill('github'::text, ARRAY[64])",
    "ARRAY(SELECT 'new-' || g FROM generate_series(1, 64) g)",
    "ARRAY(SELECT 'sha256:new-' || g FROM generate_series(1, 64) g)",
    "array_fill('issues.labeled'::text, ARRAY[64])",
    "array_fill('disk_full'::text, ARRAY[64])",
    "array_fill('{}'::text, ARRAY[64])",
    "array_fill('{}'::text, ARRAY[64])",
    r#"array_fill('{"action": "labeled"}'::text, ARRAY[64])"#,
    "array_fill('unmapped'::text, ARRAY[64])",
    "array_fill('no rule for source `gh`'::text, ARRAY[64])",
    "array_fill('delivered'::text, ARRAY[64])",
    "array_fill(now(), ARRAY[64])",
    r#"array_fill('{"planned": [], "refused": [], "failed": [], "skipped": []}'::text, ARRAY[64])"#,
    "array_fill('5ca72cc2c554'::text, ARRAY[64])",
    // No launches: the common case, an event that matches no rule.
    "'{}'::uuid[]",
    "'{}'::uuid[]",
    "'{}'::text[]",
    "'{}'::text[]",
    "'{}'::int8[]",
    "'{}'::text[]",
    "'{}'::text[]",
    "'{}'::text[]",
    "'{}'::text[]",
    "'{}'::bool[]",
    "'{}'::int4[]",
    "'{}'::text[]",
    "'{}'::text[]",
];

#[cfg(test)]
mod tests {
    /// A statement that gained a parameter fails here, not only when someone runs `explain`.
    #[test]
    fn every_statement_gets_each_of_its_parameters() {
        for (name, sql, args) in super::QUERIES {
            let highest = sql
                .split('$')
                .skip(1)
                .filter_map(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse::<usize>().ok()
                })
                .max()
                .unwrap_or(0);
            assert_eq!(args.len(), highest, "{name}");
        }
    }
}
