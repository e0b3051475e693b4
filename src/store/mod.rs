//! Postgres: connecting, creating the database, migrations. Queries live in one file per table family.

pub mod admin;
pub mod catch_up;
pub mod dispatch;
pub mod event_list;
pub mod events;
pub mod overview;
pub mod private_pg;

use crate::config::DatabaseSettings;
use secrecy::ExposeSecret;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub fn connect_options(db: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    options_from_url(db.url.expose_secret())
}

/// The URL's options. Without an `sslmode`, a server on loopback or a Unix socket is reached
/// without TLS: libpq's default (`prefer`) would negotiate TLS there too, which costs both
/// sides CPU on every commit and protects nothing that leaves the machine. A remote server
/// keeps `prefer`; `sslmode=require` (or stricter) in the URL always wins.
pub fn options_from_url(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("database.url is not a valid Postgres URL: {e}"))?;
    let says_sslmode = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("sslmode=")))
        || std::env::var_os("PGSSLMODE").is_some();
    Ok(if !says_sslmode && is_local(options.get_host()) {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        options
    })
}

fn is_local(host: &str) -> bool {
    host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A pool that connects on demand, so the service starts and reports 503 while Postgres is away.
/// Connections are not pinged at every acquire (a round trip per commit, 4 % of the service's
/// CPU at full ingest): a dead one fails its statement, the commit writer retries once on a
/// fresh connection, and workers retry their step.
pub fn lazy_pool(db: &DatabaseSettings, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .max_connections(db.max_connections)
        .acquire_timeout(Duration::from_millis(db.acquire_timeout_ms))
        .connect_lazy_with(options)
}

/// The small pool of `/metrics`, `/readyz` and the admin API, to the same database as `ingest`
/// (tests hand in their own pool, so the options are taken from it).
pub fn admin_pool(db: &DatabaseSettings, ingest: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(db.admin_max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(db.acquire_timeout_ms))
        .connect_lazy_with((*ingest.connect_options()).clone())
}

/// A connection error that names where the bridge looked and which setting says so, instead of
/// sqlx's bare "error communicating with database: Connection refused".
pub fn unreachable(e: sqlx::Error, options: &PgConnectOptions) -> anyhow::Error {
    let reached = !matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    );
    if reached {
        return e.into();
    }
    let host = options.get_host();
    let at = if host.starts_with('/') {
        format!("the socket in {host}")
    } else {
        format!("{host}:{}", options.get_port())
    };
    anyhow::anyhow!(
        "cannot reach PostgreSQL at {at} ({e}). The address comes from database.url (or \
         AAP_BRIDGE__DATABASE__URL). Start PostgreSQL there (e.g. `pg_ctlcluster <version> main \
         start` or `systemctl start postgresql`), or point database.url at a server that runs"
    )
}

/// Creates the database named in the URL if asked to and it is missing.
pub async fn ensure_database(db: &DatabaseSettings) -> anyhow::Result<()> {
    let url = db.url.expose_secret();
    let exists = match Postgres::database_exists(url).await {
        Ok(exists) => exists,
        Err(e) => return Err(unreachable(e, &connect_options(db)?)),
    };
    if db.create_if_missing && !exists {
        tracing::info!("creating the database named in database.url");
        if let Err(e) = Postgres::create_database(url).await {
            // Another replica may have won the race.
            if !Postgres::database_exists(url).await? {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => {
            unreachable(e, &pool.connect_options()).context("applying migrations")
        }
        e => anyhow::anyhow!("applying migrations: {e}"),
    })
}

/// Readiness: the database answers within a second.
pub async fn ping(pool: &PgPool) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            sqlx::query("SELECT 1").execute(pool)
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgSslMode;

    fn mode(url: &str) -> bool {
        matches!(
            super::options_from_url(url).unwrap().get_ssl_mode(),
            PgSslMode::Disable
        )
    }

    #[test]
    fn loopback_and_sockets_go_without_tls_unless_the_url_asks() {
        assert!(mode("postgres://u@127.0.0.1:5432/db"));
        assert!(mode("postgres://u@localhost/db"));
        assert!(mode("postgres://u@[::1]:5432/db"));
        assert!(mode("postgres:///db?host=/var/run/postgresql"));
        assert!(!mode("postgres://u@db.example.com/db"));
        assert!(!mode("postgres://u@127.0.0.1/db?sslmode=require"));
    }
}
