//! The admin API (`/api/v1/…`) and the console (`/ui/`).

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token for `/api/v1/…` (automation), and a console login (`token_file:` to read it
    /// from a mounted secret). Absent: every admin route answers 401 "disabled".
    #[serde(default)]
    pub token: Option<SecretString>,
    /// Who among the controller's users may act in the console; the rest may only look.
    #[serde(default)]
    pub operators: OperatorRoles,
    /// A console session ends this long after login.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Failed console logins allowed per client address, and per user name, within
    /// `login_window_secs`; past them the login answers 429 until the window has passed.
    #[serde(default = "default_failures_per_address")]
    pub login_failures_per_address: i64,
    #[serde(default = "default_failures_per_user")]
    pub login_failures_per_user: i64,
    #[serde(default = "default_login_window")]
    pub login_window_secs: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            token: None,
            operators: OperatorRoles::default(),
            session_hours: default_session_hours(),
            login_failures_per_address: default_failures_per_address(),
            login_failures_per_user: default_failures_per_user(),
            login_window_secs: default_login_window(),
        }
    }
}

/// Which controller users are operators. Everyone else who can log in to the controller gets a
/// read-only console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRoles {
    /// The controller's superusers.
    #[serde(default = "yes")]
    pub superusers: bool,
    /// Members of these teams (by name, any organization).
    #[serde(default)]
    pub teams: Vec<String>,
    /// These user names.
    #[serde(default)]
    pub users: Vec<String>,
}

impl Default for OperatorRoles {
    fn default() -> Self {
        OperatorRoles {
            superusers: true,
            teams: Vec::new(),
            users: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_session_hours() -> u32 {
    12
}
fn default_failures_per_address() -> i64 {
    10
}
fn default_failures_per_user() -> i64 {
    20
}
fn default_login_window() -> u64 {
    300
}

impl AdminSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=24 * 30).contains(&self.session_hours) {
            return Err("admin.session_hours must be from 1 to 720".into());
        }
        if self.login_failures_per_address < 1 || self.login_failures_per_user < 1 {
            return Err("admin.login_failures_per_address and _per_user must be at least 1".into());
        }
        if self.login_window_secs == 0 {
            return Err("admin.login_window_secs must be at least 1".into());
        }
        Ok(())
    }
}
