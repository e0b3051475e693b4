//! Named operators: who did what (the actor of every admin action), the audit trail, console
//! sessions, and logging in with a controller account.
//!
//! A person logs in to the console with their controller account, verified against the
//! controller's `me/`; `admin.operators` says who among them may act, the rest may only look.
//! The admin token stays for automation (the API) and as a break-glass console login. Every
//! action, failed logins included, is a row in `audit` with who, what, when and from where.

pub mod audit;
pub mod login;
pub mod sessions;

use crate::domain::Role;
use serde::Serialize;

/// Who asks for an admin action, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// A controller user name, `admin-token` or `cli:<login>`.
    pub name: String,
    pub role: Role,
    /// The client's address (None from the CLI).
    pub client: Option<String>,
}

/// The actor name of whoever presents the admin token.
pub const TOKEN_ACTOR: &str = "admin-token";

impl Actor {
    /// The admin API or a console login with `admin.token`.
    pub fn token(client: Option<String>) -> Self {
        Actor {
            name: TOKEN_ACTOR.into(),
            role: Role::Operator,
            client,
        }
    }

    /// The CLI, run by `login` on the host (`$USER`).
    pub fn cli() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            name: format!("cli:{}", crate::domain::text::clip(&user)),
            role: Role::Operator,
            client: None,
        }
    }

    pub fn can_act(&self) -> bool {
        self.role == Role::Operator
    }
}
