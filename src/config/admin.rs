//! The admin API (`/api/v1/…`) and the console (`/ui/`): off unless a token is configured.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token for `/api/v1/…`, and the console's login (`token_file:` to read it from a
    /// mounted secret). Absent: every admin route answers 401 "disabled", and so does the login.
    pub token: Option<SecretString>,
}
