//! [`ManagedBy`]: which service manager, if any, started this supervisor (`basis supervise
//! --managed-by`, written by `basis service install` into the unit), so that `stop` can say
//! that the service comes back at the next boot and how to stop it for good.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The service manager that runs a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ManagedBy {
    /// A systemd user unit (`systemctl --user`).
    SystemdUser,
    /// A systemd system unit (`systemctl`).
    SystemdSystem,
    /// A launchd agent (`~/Library/LaunchAgents`).
    LaunchdAgent,
    /// A launchd daemon (`/Library/LaunchDaemons`).
    LaunchdDaemon,
}

impl ManagedBy {
    pub const ALL: [ManagedBy; 4] = [
        Self::SystemdUser,
        Self::SystemdSystem,
        Self::LaunchdAgent,
        Self::LaunchdDaemon,
    ];

    /// The flag value, e.g. `systemd-user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemdUser => "systemd-user",
            Self::SystemdSystem => "systemd-system",
            Self::LaunchdAgent => "launchd-agent",
            Self::LaunchdDaemon => "launchd-daemon",
        }
    }
}

impl fmt::Display for ManagedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ManagedBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_flag_and_serde() {
        for m in ManagedBy::ALL {
            assert_eq!(m.as_str().parse::<ManagedBy>(), Ok(m));
            assert_eq!(
                serde_json::to_value(m).ok(),
                Some(serde_json::Value::String(m.as_str().to_owned()))
            );
        }
        assert!("systemd".parse::<ManagedBy>().is_err());
    }
}
