//! `bench copy`: the group-commit INSERT (arrays through UNNEST, as the service writes) against
//! COPY into a temporary staging table plus one `INSERT … SELECT … ON CONFLICT`, on the same
//! events, in interleaved rounds on one connection. Reports wall time and Postgres CPU per event.

use aap_bridge::event::Event;
use aap_bridge::store::events::{insert_batch, NewEvent};
use sqlx::migrate::MigrateDatabase;
use sqlx::{Connection, PgPool};
use std::time::Instant;

const BATCH: usize = 200;
const BATCHES: usize = 50;
const ROUNDS: usize = 3;

pub async fn run(server_url: &str) -> anyhow::Result<()> {
    let db_url = crate::database_url(server_url, "copy")?;
    sqlx::Postgres::create_database(&db_url).await?;
    let result = compare(&db_url).await;
    sqlx::Postgres::force_drop_database(&db_url).await.ok();
    result
}

async fn compare(db_url: &str) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(aap_bridge::store::options_from_url(db_url)?)
        .await?;
    aap_bridge::store::MIGRATOR.run(&pool).await?;
    let template = crate::ceiling::sample_event()?;
    println!(
        "copy: {BATCHES} batches of {BATCH} events per round and way, {ROUNDS} rounds, one connection"
    );
    let mut serial = 0usize;
    let mut totals = [(0f64, 0f64); 2];
    for round in 0..ROUNDS {
        for (way, total) in totals.iter_mut().enumerate() {
            let (wall, pg) = timed(async {
                for _ in 0..BATCHES {
                    let events = fresh(&template, &mut serial);
                    match way {
                        0 => unnest(&pool, &events).await?,
                        _ => copy(&pool, &events).await?,
                    }
                }
                anyhow::Ok(())
            })
            .await?;
            let n = (BATCHES * BATCH) as f64;
            println!(
                "  round {}: {:<28} {:>6.1} us wall, {:>5.1} us Postgres CPU per event",
                round + 1,
                WAYS[way],
                wall * 1e6 / n,
                pg * 1e6 / n
            );
            total.0 += wall;
            total.1 += pg;
        }
    }
    let n = (BATCHES * BATCH * ROUNDS) as f64;
    for (way, (wall, pg)) in totals.iter().enumerate() {
        println!(
            "{:<36} {:>6.1} us wall, {:>5.1} us Postgres CPU per event",
            WAYS[way],
            wall * 1e6 / n,
            pg * 1e6 / n
        );
    }
    pool.close().await;
    Ok(())
}

const WAYS: [&str; 2] = [
    "INSERT … UNNEST (the service's):",
    "COPY to staging + INSERT … SELECT:",
];

async fn timed<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<(f64, f64)> {
    let pg = crate::postgres_cpu_secs();
    let t = Instant::now();
    f.await?;
    Ok((t.elapsed().as_secs_f64(), crate::postgres_cpu_secs() - pg))
}

fn fresh(template: &Event, serial: &mut usize) -> Vec<(uuid::Uuid, Event)> {
    (0..BATCH)
        .map(|_| {
            *serial += 1;
            let mut e = template.clone();
            e.delivery_id = format!("copy-{serial}");
            e.dedupe_key = format!("bench:copy-{serial}");
            (uuid::Uuid::now_v7(), e)
        })
        .collect()
}

async fn unnest(pool: &PgPool, events: &[(uuid::Uuid, Event)]) -> anyhow::Result<()> {
    let items: Vec<NewEvent> = events
        .iter()
        .map(|(id, event)| NewEvent {
            id: *id,
            event,
            decided: None,
        })
        .collect();
    insert_batch(pool, &items).await?;
    Ok(())
}

/// The same columns and the same duplicate checks as `INSERT_EVENTS` (no launches: these
/// events are stored `pending`, as `unnest` stores them).
async fn copy(pool: &PgPool, events: &[(uuid::Uuid, Event)]) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS stage (id uuid, source text, kind text,
             delivery_id text, dedupe_key text, event_type text, category text, ticket text,
             headers text, payload text, arrival text) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    let mut data = String::new();
    for (id, e) in events {
        let cols = [
            id.to_string(),
            e.source.clone(),
            e.kind.as_str().to_string(),
            e.delivery_id.clone(),
            e.dedupe_key.clone(),
            e.event_type.clone(),
            e.category.clone().unwrap_or_default(),
            serde_json::to_string(&e.ticket)?,
            serde_json::to_string(&e.headers)?,
            e.payload.text().to_string(),
            e.arrival.as_str().to_string(),
        ];
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                data.push('\t');
            }
            escape(c, &mut data);
        }
        data.push('\n');
    }
    let mut sink = tx.copy_in_raw("COPY stage FROM STDIN").await?;
    sink.send(data.into_bytes()).await?;
    sink.finish().await?;
    sqlx::query(
        "INSERT INTO events (id, source, kind, delivery_id, dedupe_key, event_type, category,
                             ticket, headers, payload, state, arrival)
         SELECT s.id, s.source, s.kind, s.delivery_id, s.dedupe_key, s.event_type,
                NULLIF(s.category, ''), s.ticket::jsonb, s.headers::jsonb, s.payload::json,
                'pending',
                CASE WHEN s.kind = 'github' AND s.arrival = 'delivered'
                      AND EXISTS (SELECT 1 FROM catch_up_redeliveries r
                                  WHERE r.source = s.source AND r.delivery_id = s.delivery_id)
                     THEN 'redelivered' ELSE s.arrival END
         FROM stage s
         WHERE NOT EXISTS (SELECT 1 FROM dedupe d
                           WHERE d.source = s.source AND d.dedupe_key = s.dedupe_key)
         ON CONFLICT (source, dedupe_key) DO NOTHING
         RETURNING id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// COPY's text format: backslash, tab, newline and carriage return escaped.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}
