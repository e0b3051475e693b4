//! A console login: the rate limit, the check of the credentials (the admin token, or a
//! controller account against the controller), the role, the audit row and the session.

use super::{audit, sessions, Actor, TOKEN_ACTOR};
use crate::config::{AdminSettings, OperatorRoles};
use crate::controller::{Controller, ControllerError, ControllerUser};
use crate::domain::{AuditAction, Role};
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// What a login is checked against.
#[derive(Clone)]
pub struct LoginPolicy {
    pub token: Option<SecretString>,
    /// None in dry-run: then only the admin token logs in.
    pub controller: Option<Arc<Controller>>,
    pub roles: OperatorRoles,
    pub ttl: Duration,
    pub per_address: i64,
    pub per_user: i64,
    pub window: Duration,
}

impl LoginPolicy {
    pub fn new(s: &AdminSettings, controller: Option<Arc<Controller>>) -> Self {
        use secrecy::ExposeSecret;
        LoginPolicy {
            token: s.token.clone().filter(|t| !t.expose_secret().is_empty()),
            controller,
            roles: s.operators.clone(),
            ttl: Duration::from_secs(u64::from(s.session_hours) * 3600),
            per_address: s.login_failures_per_address,
            per_user: s.login_failures_per_user,
            window: Duration::from_secs(s.login_window_secs),
        }
    }

    /// The console can be logged in to at all.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.controller.is_some()
    }
}

pub enum Credentials {
    Token(String),
    Account { user: String, password: String },
}

/// Why a login did not start a session; each front end picks its status.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Wrong(String),
    #[error("too many failed logins from this address or for this user; try again in {0} s")]
    Limited(u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Disabled(String),
}

/// The role `roles` gives a controller user.
pub fn role_of(u: &ControllerUser, roles: &OperatorRoles) -> Role {
    let operator = (roles.superusers && u.superuser)
        || roles.users.iter().any(|n| n == &u.username)
        || u.teams.iter().any(|t| roles.teams.contains(t));
    if operator {
        Role::Operator
    } else {
        Role::ReadOnly
    }
}

pub async fn log_in(
    pool: &PgPool,
    p: &LoginPolicy,
    creds: Credentials,
    client: Option<&str>,
) -> Result<(String, sessions::Session), Refused> {
    let name = match &creds {
        Credentials::Token(_) => TOKEN_ACTOR.to_string(),
        Credentials::Account { user, .. } => user.clone(),
    };
    let db = |e: sqlx::Error| {
        tracing::warn!(error = %e, "console login: database error");
        Refused::Unavailable("the database did not answer; try again".into())
    };
    let (from_address, for_user) = audit::recent_failures(pool, client, &name, p.window)
        .await
        .map_err(db)?;
    if from_address >= p.per_address || for_user >= p.per_user {
        tracing::warn!(client, user = %name.escape_debug(), from_address, for_user,
            "console login refused: too many failed logins");
        return Err(Refused::Limited(p.window.as_secs()));
    }
    let verified = match creds {
        Credentials::Token(presented) => match &p.token {
            None => Err(Refused::Disabled(
                "admin token logins are off: admin.token is not set".into(),
            )),
            Some(t) if crate::signature::token_matches(std::slice::from_ref(t), &presented) => {
                Ok(Role::Operator)
            }
            Some(_) => Err(Refused::Wrong("That is not the admin token.".into())),
        },
        Credentials::Account { user, password } => {
            let Some(c) = &p.controller else {
                return Err(Refused::Disabled(
                    "no controller is configured (dry-run): log in with the admin token".into(),
                ));
            };
            let with_teams = !p.roles.teams.is_empty();
            match c.verify_user(&user, &password, with_teams).await {
                Ok(u) => Ok(role_of(&u, &p.roles)),
                Err(ControllerError::Unauthorized(_)) => Err(Refused::Wrong(
                    "The controller did not accept that user name and password.".into(),
                )),
                Err(e) => {
                    tracing::warn!(client, user = %user.escape_debug(), error = %e,
                        "console login: the controller could not check the account");
                    Err(Refused::Unavailable(format!(
                        "The controller could not check the account ({e}). While it cannot, \
                         log in with the admin token."
                    )))
                }
            }
        }
    };
    let role = match verified {
        Ok(role) => role,
        Err(Refused::Wrong(why)) => {
            tracing::warn!(client, user = %name.escape_debug(), "console login refused: wrong credentials");
            audit::login_failed(pool, &name, client, &why).await;
            return Err(Refused::Wrong(why));
        }
        Err(other) => return Err(other),
    };
    let (cookie, session) = sessions::start(pool, &name, role, client, p.ttl)
        .await
        .map_err(db)?;
    let actor = Actor {
        name: name.clone(),
        role,
        client: client.map(str::to_string),
    };
    audit::record(
        pool,
        &actor,
        AuditAction::Login,
        None,
        serde_json::json!({}),
    )
    .await;
    tracing::info!(client, user = %name.escape_debug(), role = %role, "console login");
    Ok((cookie, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_superuser_teams_and_names() {
        let user = |name: &str, superuser: bool, teams: &[&str]| ControllerUser {
            id: 1,
            username: name.into(),
            superuser,
            teams: teams.iter().map(|t| t.to_string()).collect(),
        };
        let roles = OperatorRoles {
            superusers: true,
            teams: vec!["sre-oncall".into()],
            users: vec!["carol".into()],
        };
        assert_eq!(role_of(&user("root", true, &[]), &roles), Role::Operator);
        assert_eq!(
            role_of(&user("alice", false, &["sre-oncall"]), &roles),
            Role::Operator
        );
        assert_eq!(role_of(&user("carol", false, &[]), &roles), Role::Operator);
        assert_eq!(
            role_of(&user("bob", false, &["dev"]), &roles),
            Role::ReadOnly
        );
        let strict = OperatorRoles {
            superusers: false,
            ..roles
        };
        assert_eq!(role_of(&user("root", true, &[]), &strict), Role::ReadOnly);
    }
}
