//! A private PostgreSQL for `dev_mode` and `aap-bridge db`, when the configured server does not
//! answer (README "Quick start"). It runs the PostgreSQL binaries already installed, keeps its
//! data under `.aap-bridge/postgres/` and listens only on a Unix socket in that folder (no TCP
//! port), with trust auth: only users who can open the folder can connect.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where `serve` keeps it, relative to the working directory.
pub const DEFAULT_DIR: &str = ".aap-bridge/postgres";
/// The socket is `.s.PGSQL.<PORT>` in the folder; no TCP port is opened.
const PORT: u16 = 5432;

pub struct PrivatePg {
    /// The folder: the socket, `data/` and `postgres.log`.
    pub root: PathBuf,
    bindir: PathBuf,
    /// PostgreSQL refuses to run as root: as root it runs as this user (`postgres`).
    run_as: Option<String>,
    /// Also listen on this loopback port (the tests' cluster: `DATABASE_URL`'s address).
    tcp_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No cluster in the folder yet.
    NotCreated,
    Stopped,
    Running,
}

impl PrivatePg {
    /// The cluster in `root` (made absolute), run with the installed binaries.
    pub fn locate(root: &Path) -> Result<Self, String> {
        let root = std::path::absolute(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let bindir = find_bindir()?;
        let run_as = is_root().then(|| {
            std::env::var("AAP_BRIDGE_PG_USER").unwrap_or_else(|_| "postgres".to_string())
        });
        Ok(PrivatePg {
            root,
            bindir,
            run_as,
            tcp_port: None,
        })
    }

    /// For the tests: listens on 127.0.0.1:`port` too, and trades durability for speed (the
    /// data is thrown away).
    pub fn for_tests(mut self, port: u16) -> Self {
        self.tcp_port = Some(port);
        self
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// `postgres://postgres@localhost/{db}?host=<the folder>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost:{PORT}/{db}?host={}",
            self.root.display()
        )
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    pub fn status(&self) -> Status {
        if !self.data().join("PG_VERSION").is_file() {
            return Status::NotCreated;
        }
        let ok = self
            .run("pg_ctl", &["status", "-D", &self.data().to_string_lossy()])
            .is_ok();
        if ok {
            Status::Running
        } else {
            Status::Stopped
        }
    }

    /// Creates the cluster if needed and starts it; true when this call started it (false: it
    /// was running already, e.g. left by a process killed with -9).
    pub fn start(&self) -> Result<bool, String> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| format!("cannot create {}: {e}", self.root.display()))?;
        set_private(&self.root)?;
        self.hand_over(&self.root)?;
        if self.status() == Status::NotCreated {
            let data = self.data().to_string_lossy().into_owned();
            self.run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
            )?;
        }
        if self.status() == Status::Running {
            return Ok(false);
        }
        let options = match self.tcp_port {
            None => format!(
                "-c listen_addresses='' -c unix_socket_directories='{}' -p {PORT}",
                self.root.display()
            ),
            Some(port) => format!(
                "-c listen_addresses='127.0.0.1' -c unix_socket_directories='{}' -p {port} \
                 -c max_connections=300 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off",
                self.root.display()
            ),
        };
        let data = self.data().to_string_lossy().into_owned();
        let log = self.log_file().to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "start", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options,
            ],
        )
        .map_err(|e| format!("{e} (its log: {log})"))?;
        Ok(true)
    }

    /// Stops it (fast shutdown: open connections are closed, nothing committed is lost).
    pub fn stop(&self) -> Result<(), String> {
        if self.status() != Status::Running {
            return Ok(());
        }
        let data = self.data().to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &["stop", "-D", &data, "-m", "fast", "-w", "-t", "60"],
        )
    }

    /// `psql` on database `db`, attached to this terminal.
    pub fn psql(&self, db: &str) -> Result<(), String> {
        let host = self.root.to_string_lossy().into_owned();
        let port = PORT.to_string();
        let mut cmd = self.command("psql", &["-h", &host, "-p", &port, "-U", "postgres", db]);
        let status = cmd.status().map_err(|e| format!("psql: {e}"))?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("psql exited with {status}")),
        }
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bindir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe).args(args);
                c
            }
            None => {
                let mut c = Command::new(exe);
                c.args(args);
                c
            }
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = self
            .command(program, args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{program} failed ({}): {}",
            out.status,
            said.trim()
        ))
    }

    /// As root, the folder belongs to the user the server runs as.
    fn hand_over(&self, dir: &Path) -> Result<(), String> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let out = Command::new("chown")
            .arg("-R")
            .arg(user)
            .arg(dir)
            .output()
            .map_err(|e| format!("chown: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "cannot give {} to user {user} (PostgreSQL does not run as root; set \
                 AAP_BRIDGE_PG_USER to another user): {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}

/// Owner only: trust auth over the socket is safe because nobody else can reach it.
fn set_private(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

fn is_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user (Linux).
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    false
}

/// The folder with `initdb` and `pg_ctl`: `AAP_BRIDGE_PG_BINDIR`, `pg_config --bindir`, then the
/// usual places (Debian and Ubuntu, Red Hat, Homebrew, Postgres.app), newest version first.
pub fn find_bindir() -> Result<PathBuf, String> {
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut tried: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("AAP_BRIDGE_PG_BINDIR") {
        tried.push(d.into());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            tried.push(String::from_utf8_lossy(&out.stdout).trim().into());
        }
    }
    for pattern in [
        "/usr/lib/postgresql/",
        "/usr/pgsql-",
        "/opt/homebrew/opt/postgresql@",
        "/usr/local/opt/postgresql@",
    ] {
        tried.extend(versions(pattern));
    }
    tried.push("/Applications/Postgres.app/Contents/Versions/latest/bin".into());
    tried.push("/usr/local/bin".into());
    tried.push("/usr/bin".into());
    tried.iter().find(|d| usable(d)).cloned().ok_or_else(|| {
        "no PostgreSQL binaries found (initdb and pg_ctl): install PostgreSQL (e.g. \
             `apt install postgresql`, `brew install postgresql@16`) or set AAP_BRIDGE_PG_BINDIR"
            .to_string()
    })
}

/// `<prefix><version>/bin` for each installed version, newest first (`/usr/lib/postgresql/16/bin`).
fn versions(prefix: &str) -> Vec<PathBuf> {
    let (parent, stem) = match prefix.rsplit_once('/') {
        Some((p, s)) => (p, s),
        None => return Vec::new(),
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix(stem)?;
            let major: u32 = version.split('.').next()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Whether the configured server answers at all (a TCP connect, or the socket file), within
/// `wait`. An answer that refuses our credentials still counts: that is the operator's to fix.
pub async fn answers(options: &sqlx::postgres::PgConnectOptions, wait: Duration) -> bool {
    let port = options.get_port();
    if let Some(dir) = options.get_socket() {
        return dir.join(format!(".s.PGSQL.{port}")).exists();
    }
    let host = options.get_host().to_string();
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    matches!(tokio::time::timeout(wait, connect).await, Ok(Ok(_)))
}
