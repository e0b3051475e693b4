//! The controller's job settings that matter for untrusted text: with
//! `ALLOW_JINJA_IN_EXTRA_VARS: always`, ticket text that reaches extra_vars is templated on the
//! execution node. The default, `template`, marks launch-time values unsafe.

use super::{Controller, ControllerError};
use serde::Serialize;
use serde_json::Value;

/// What `settings/jobs/` says about `ALLOW_JINJA_IN_EXTRA_VARS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JinjaSetting {
    /// `template` (default), `never` or `always`.
    Value(String),
    /// The service user may not read settings (403), or the API has no such endpoint (404).
    Unreadable(String),
}

impl JinjaSetting {
    /// A loud warning when launch-time values are templated.
    pub fn warning(&self) -> Option<String> {
        match self {
            JinjaSetting::Value(v) if v == "always" => Some(
                "the controller's ALLOW_JINJA_IN_EXTRA_VARS is `always`: Jinja in ticket text \
                 that reaches extra_vars is evaluated on the execution node. Set it to \
                 `template` (Settings > Jobs), and keep `allow_templates_in_values` off in the \
                 mapping rules"
                    .into(),
            ),
            _ => None,
        }
    }

    /// One line for `controller check`.
    pub fn describe(&self) -> String {
        match self {
            JinjaSetting::Value(v) => format!("ALLOW_JINJA_IN_EXTRA_VARS = {v}"),
            JinjaSetting::Unreadable(why) => {
                format!(
                    "ALLOW_JINJA_IN_EXTRA_VARS not readable ({why}); check it on the controller"
                )
            }
        }
    }
}

impl Controller {
    /// Reads `{api_root}settings/jobs/`. 403 and 404 are an answer, not an error.
    pub async fn allow_jinja(&self) -> Result<JinjaSetting, ControllerError> {
        let root = &self.api().await?.root;
        let v = match self
            .get(&format!("{root}settings/jobs/"), "job settings")
            .await
        {
            Ok(v) => v,
            Err(ControllerError::Forbidden(_)) => {
                return Ok(JinjaSetting::Unreadable(
                    "403: the service user may not read settings".into(),
                ))
            }
            Err(ControllerError::NotFound(_)) => {
                return Ok(JinjaSetting::Unreadable(
                    "404: no settings/jobs/ endpoint".into(),
                ))
            }
            Err(e) => return Err(e),
        };
        Ok(
            match v.get("ALLOW_JINJA_IN_EXTRA_VARS").and_then(Value::as_str) {
                Some(s) => JinjaSetting::Value(s.to_string()),
                None => JinjaSetting::Unreadable(
                    "settings/jobs/ has no ALLOW_JINJA_IN_EXTRA_VARS".into(),
                ),
            },
        )
    }

    /// Start-up: logs the setting, loudly when `always`. Never fails the start.
    pub async fn warn_about_jinja(&self) {
        match self.allow_jinja().await {
            Ok(s) => match s.warning() {
                Some(w) => tracing::error!("SECURITY: {w}"),
                None => tracing::info!("controller job settings: {}", s.describe()),
            },
            Err(e) => tracing::warn!(error = %e, "could not read the controller's job settings"),
        }
    }
}
