//! The bottom floor: kinds, states, ids and time words that every lifecycle shares. Nothing here
//! imports another module of the crate, so every arrow into it points down.

/// Maps an enum with `as_str()` and `FromStr` to a `text` column whose CHECK lists the same
/// words, so Rust never handles a raw state string.
macro_rules! text_column {
    ($t:ty) => {
        impl sqlx::Type<sqlx::Postgres> for $t {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }
        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $t {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                s.parse::<$t>().map_err(Into::into)
            }
        }
    };
}

/// An enum of fixed words, stored as `text` (see `text_column!`).
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not a {}; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
        text_column!($name);
        // A string schema listing the words, for the OpenAPI document.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

pub mod approval;
mod ids;
mod kinds;
pub mod paging;
pub mod snow_query;
mod states;
pub mod text;
pub mod ticket;
pub mod time;

pub use ids::{CallbackId, EventId, LaunchId};
pub use kinds::{Reply, SourceKind, TemplateKind};
pub use states::{
    Arrival, AuditAction, CallbackState, DeliveryOutcome, EventState, JobStatus, LaunchState,
    PausedBy, Phase, Role,
};
