//! Ids of the three lifecycles' rows, each its own type so a launch id can never be passed where
//! an event id is meant. UUIDv7: they sort in creation order.

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh id (UUIDv7).
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(u: uuid::Uuid) -> Self {
                $name(u)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// `events.id`.
    EventId
);
id_type!(
    /// `launches.id`; also the `aap_bridge_launch_id` marker on the job.
    LaunchId
);
id_type!(
    /// `callbacks.id`.
    CallbackId
);
