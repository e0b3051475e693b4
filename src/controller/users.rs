//! A person's controller account, checked for a console login: `me/` with their own
//! credentials (HTTP Basic), and their teams when roles depend on teams.
//!
//! These requests go through their own HTTP client without a cookie jar: in session mode the
//! service's jar holds the service's session, and a person's login must never replace it.

use super::{read_json, transport::Transport, Controller, ControllerError};
use serde_json::Value;

/// Who the controller says the person is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerUser {
    pub id: i64,
    pub username: String,
    pub superuser: bool,
    /// Team names; empty unless asked for.
    pub teams: Vec<String>,
}

impl Controller {
    /// Checks the person's credentials against `me/`. Wrong ones are `Unauthorized`.
    pub async fn verify_user(
        &self,
        username: &str,
        password: &str,
        with_teams: bool,
    ) -> Result<ControllerUser, ControllerError> {
        let root = self.api().await?.root.clone();
        let t: &Transport = &self.login_t;
        let get = |path: String| {
            let rb = t
                .http
                .get(t.url(&path))
                .basic_auth(username, Some(password));
            async move { read_json(t.execute(rb).await?, "your account (me/)").await }
        };
        let me = get(format!("{root}me/")).await?;
        let u = me
            .pointer("/results/0")
            .ok_or_else(|| ControllerError::Protocol("me/ returned no user".into()))?;
        let id = u.get("id").and_then(Value::as_i64).unwrap_or_default();
        let mut user = ControllerUser {
            id,
            username: u
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or(username)
                .to_string(),
            superuser: u
                .get("is_superuser")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            teams: Vec::new(),
        };
        if with_teams {
            let teams = get(format!("{root}users/{id}/teams/?page_size=200")).await?;
            user.teams = teams
                .get("results")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|t| t.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
        }
        Ok(user)
    }
}
