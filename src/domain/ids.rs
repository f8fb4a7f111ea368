//! Identifiers: `WorkerId` and `ReplicaId` (chosen by the operator) and the generated ids of
//! tasks, submissions, jobs and receipts.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier. Messages name the rule and never echo the value
/// (an id field is free text an agent may have pasted anything into).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} {faults}")]
    BadWorkerId {
        kind: &'static str,
        faults: WorkerIdFaults,
    },
    #[error("{kind} must be '{prefix}' followed by 32 lowercase hex characters")]
    BadGenerated {
        kind: &'static str,
        prefix: &'static str,
    },
}

/// What is wrong with a worker id, each rule it breaks and nothing else. It names character
/// classes (and ASCII punctuation, one character each), never the value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerIdFaults {
    /// Its length in characters, when that is outside 2 to 63.
    pub bad_length: Option<usize>,
    pub uppercase: bool,
    /// ASCII punctuation and spaces other than '-', in order of first appearance.
    pub punctuation: Vec<char>,
    /// Letters outside a-z, control characters and the like.
    pub other: bool,
    /// It starts with '-'.
    pub starts_with_dash: bool,
}

impl WorkerIdFaults {
    /// The rules `s` breaks (all empty when it is a valid worker id).
    pub fn of(s: &str) -> Self {
        let mut faults = Self::default();
        let len = s.chars().count();
        if !(2..=63).contains(&len) {
            faults.bad_length = Some(len);
        }
        for c in s.chars() {
            if c.is_ascii_uppercase() {
                faults.uppercase = true;
            } else if (c.is_ascii_punctuation() || c == ' ') && c != '-' {
                if !faults.punctuation.contains(&c) {
                    faults.punctuation.push(c);
                }
            } else if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                faults.other = true;
            }
        }
        faults.starts_with_dash = s.starts_with('-');
        faults
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for WorkerIdFaults {
    /// E.g. "must not contain uppercase letters or '_' (only lowercase letters, digits and
    /// '-')"; rules joined with "; ".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rules: Vec<String> = Vec::new();
        let mut banned: Vec<String> = Vec::new();
        if self.uppercase {
            banned.push("uppercase letters".to_owned());
        }
        banned.extend(self.punctuation.iter().map(|c| match c {
            ' ' => "spaces".to_owned(),
            c => format!("'{c}'"),
        }));
        if self.other {
            banned.push("characters outside a-z, 0-9 and '-'".to_owned());
        }
        if !banned.is_empty() {
            let list = match banned.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => banned.concat(),
            };
            rules.push(format!(
                "must not contain {list} (only lowercase letters, digits and '-')"
            ));
        }
        if self.starts_with_dash {
            rules.push("must start with a lowercase letter or digit, not '-'".to_owned());
        }
        if let Some(len) = self.bad_length {
            rules.push(format!("must be 2 to 63 characters long (it has {len})"));
        }
        if rules.is_empty() {
            rules.push("is valid".to_owned());
        }
        f.write_str(&rules.join("; "))
    }
}

/// A worker's name: `^[a-z0-9][a-z0-9-]{1,62}$`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(String);

impl WorkerId {
    pub const PATTERN: &'static str = "^[a-z0-9][a-z0-9-]{1,62}$";

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let faults = WorkerIdFaults::of(s);
        if faults.is_empty() {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::BadWorkerId {
                kind: "worker_id",
                faults,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerId({})", self.0)
    }
}

impl FromStr for WorkerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for WorkerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WorkerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for WorkerId {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "WorkerId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": Self::PATTERN,
            "description": "Worker name: 2-63 lowercase letters, digits and '-', starting with a letter or digit."
        })
    }
}

/// An orchestrator replica's name among the replicas on one database, from its config; the
/// same grammar as a [`WorkerId`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaId(WorkerId);

impl ReplicaId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        WorkerId::parse(s).map(Self).map_err(|e| match e {
            IdError::BadWorkerId { faults, .. } => IdError::BadWorkerId {
                kind: "replica id",
                faults,
            },
            other @ IdError::BadGenerated { .. } => other,
        })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplicaId({})", self.as_str())
    }
}

/// Defines a generated identifier: a fixed prefix followed by 32 lowercase hex characters, a
/// UUIDv7 (RFC 9562): the unix time in milliseconds, then 74 random bits. Ids made later sort
/// later, so the store's indexes on them grow at their right edge (one page per commit, and
/// that page in cache) instead of at a random leaf per row; the random part keeps them
/// unguessable.
macro_rules! generated_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            pub const PATTERN: &'static str = concat!("^", $prefix, "[a-f0-9]{32}$");

            /// A fresh id: now, and 80 bits of the thread's CSPRNG (74 of them kept).
            pub fn generate() -> Self {
                let mut random = [0u8; 10];
                rand::rng().fill_bytes(&mut random);
                let millis = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
                Self(format!("{}{}", $prefix, id.simple()))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                let ok = s.strip_prefix($prefix).is_some_and(|rest| {
                    rest.len() == 32
                        && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                });
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::BadGenerated { kind: $kind, prefix: $prefix })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<str>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": Self::PATTERN })
            }
        }
    };
}

generated_id!(
    /// A task in the market: `^task-[a-f0-9]{32}$`.
    TaskId, "task-", "task_id"
);
generated_id!(
    /// A submission of output for a claimed task.
    SubmissionId, "sub-", "submission_id"
);
generated_id!(
    /// One gateway job routed to a worker.
    JobId, "job-", "job_id"
);
generated_id!(
    /// A stored receipt.
    ReceiptId, "rcpt-", "receipt_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_id_rules() {
        for ok in ["ab", "gpu-1", "0rig", &"a".repeat(63)] {
            assert!(WorkerId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-ab", "Ab", "a_b", "a b", "ä1", &"a".repeat(64)] {
            assert!(WorkerId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_round_trip() {
        let id = TaskId::generate();
        assert!(id.as_str().starts_with("task-"));
        assert_eq!(TaskId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(TaskId::generate(), id);
        assert!(TaskId::parse("task-ABCDEF00000000000000000000000000").is_err());
        assert!(TaskId::parse("sub-00000000000000000000000000000000").is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<TaskId>(&json).unwrap(), id);
    }

    #[test]
    fn generated_ids_are_uuid_v7_and_later_ones_sort_later() {
        let first = JobId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = JobId::generate();
        assert!(first < later, "{first} then {later}");
        let hex = first.as_str().strip_prefix("job-").unwrap();
        let uuid = uuid::Uuid::parse_str(hex).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
        let at_ms = u128::from(secs) * 1000 + u128::from(nanos / 1_000_000);
        assert!(now_ms - at_ms < 5_000, "{at_ms} vs {now_ms}");
        // Within one millisecond the random bits differ.
        let burst: std::collections::HashSet<_> = (0..1000).map(|_| JobId::generate()).collect();
        assert_eq!(burst.len(), 1000);
    }

    #[test]
    fn worker_id_errors_name_exactly_the_rules_broken() {
        let msg = |s: &str| WorkerId::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("GPU_Box"),
            "worker_id must not contain uppercase letters or '_' (only lowercase letters, \
             digits and '-')"
        );
        assert_eq!(
            msg("-gpu"),
            "worker_id must start with a lowercase letter or digit, not '-'"
        );
        assert_eq!(
            msg("a"),
            "worker_id must be 2 to 63 characters long (it has 1)"
        );
        assert_eq!(
            msg("a b.c"),
            "worker_id must not contain spaces or '.' (only lowercase letters, digits and '-')"
        );
        assert!(msg("ä1").contains("characters outside a-z, 0-9 and '-'"));
        assert!(
            !msg("GPU_Box").contains("long"),
            "length only when it is wrong"
        );
    }

    #[test]
    fn id_errors_do_not_echo_input() {
        let secret = "Zsecret-looking-value";
        let msg = WorkerId::parse(secret).unwrap_err().to_string();
        assert!(!msg.contains(secret));
    }
}
