//! The systemd unit `basis service install` writes (`basis-worker.service`), as a pure
//! function of a [`ServiceSpec`], and systemd's quoting for the values in it.

use std::fmt::Write as _;

use super::spec::{ServiceSpec, path_text};
use super::{MARKER, Scope};
use crate::domain::{ErrorCode, Problem};

/// Where a word goes: `ExecStart=` expands `$VAR`, so a literal `$` is written `$$` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Exec,
    Plain,
}

/// One word of a systemd value: `%` written `%%` (specifiers), `$` written `$$` in a command
/// line; in double quotes, with `\` and `"` escaped, when it holds whitespace, a quote, a
/// backslash or `;`. Control characters cannot be written and are refused.
fn word(value: &str, field: Field) -> Result<String, Problem> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!(
                "{value:?} cannot be written into a systemd unit (empty, or a control character)"
            ),
        )
        .with_fix("use paths without newlines or other control characters"));
    }
    let needs_quotes = value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    let mut out = String::with_capacity(value.len() + 2);
    if needs_quotes {
        out.push('"');
    }
    for c in value.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' if field == Field::Exec => out.push_str("$$"),
            '\\' | '"' if needs_quotes => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if needs_quotes {
        out.push('"');
    }
    Ok(out)
}

/// The `ExecStart=` value: the executable and `supervise` with its arguments.
pub fn exec_start(spec: &ServiceSpec) -> Result<String, Problem> {
    let mut words = vec![word(path_text(&spec.exe)?, Field::Exec)?];
    for arg in spec.supervise_args()? {
        words.push(word(&arg, Field::Exec)?);
    }
    Ok(words.join(" "))
}

/// The unit file's text.
pub fn render(spec: &ServiceSpec) -> Result<String, Problem> {
    let system = spec.scope() == Scope::System;
    let mut u = String::new();
    let _ = writeln!(u, "# {MARKER}; `basis service uninstall` removes it.");
    let _ = writeln!(
        u,
        "# Run `basis service install --force` again after moving the binary or the env file."
    );
    u.push_str("[Unit]\n");
    u.push_str("Description=basis worker (supervised; reconnects to the compute network)\n");
    if system {
        u.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    }
    u.push_str("\n[Service]\nType=simple\n");
    let _ = writeln!(u, "ExecStart={}", exec_start(spec)?);
    for (name, value) in &spec.environment {
        let _ = writeln!(
            u,
            "Environment={}",
            word(&format!("{name}={value}"), Field::Plain)?
        );
    }
    if system {
        let _ = writeln!(u, "User={}", word(&spec.account.name, Field::Plain)?);
    }
    u.push_str(concat!(
        "# A clean stop (`basis stop`, `systemctl stop`) exits 0 and stays stopped; a crash is\n",
        "# restarted. Exit 2 (the configuration must be fixed) and 3 (another supervisor runs for\n",
        "# this state directory) are not retried.\n",
        "Restart=on-failure\n",
        "RestartSec=5\n",
        "RestartPreventExitStatus=2 3\n",
        "# SIGTERM goes to the supervisor alone, which drains the worker (up to 30 s); a second\n",
        "# SIGTERM sent to the worker directly would make it abandon its jobs.\n",
        "KillMode=mixed\n",
        "TimeoutStopSec=60\n",
        "# Hardening. No PrivateDevices=: the GPU runtime needs /dev/nvidia* (and /dev/dri, /dev/kfd).\n",
        "NoNewPrivileges=yes\n",
    ));
    if system {
        u.push_str("ProtectSystem=strict\nProtectHome=read-only\n");
        let state = word(&format!("-{}", path_text(&spec.state_dir)?), Field::Plain)?;
        let _ = writeln!(
            u,
            "# The one directory it writes: supervisor.json, the control socket, the logs.\nReadWritePaths={state}"
        );
        u.push_str(concat!(
            "PrivateTmp=yes\n",
            "ProtectKernelTunables=yes\n",
            "ProtectKernelModules=yes\n",
            "ProtectControlGroups=yes\n",
        ));
    } else {
        u.push_str(concat!(
            "# ProtectSystem=, ProtectHome=, PrivateTmp= and ProtectKernel*/ProtectControlGroups=\n",
            "# are left out: a user manager can apply them only inside an unprivileged user\n",
            "# namespace, which many hosts deny (Ubuntu 24.04 by default), and there\n",
            "# ProtectKernelModules= keeps the unit from starting at all. The system unit\n",
            "# (`basis service install --system`) has them.\n",
        ));
    }
    u.push_str(concat!(
        "RestrictSUIDSGID=yes\n",
        "LockPersonality=yes\n",
        "RestrictRealtime=yes\n",
        "UMask=0077\n",
        "\n[Install]\n",
    ));
    let target = if system {
        "multi-user.target"
    } else {
        "default.target"
    };
    let _ = writeln!(u, "WantedBy={target}");
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::service::spec::example;
    use crate::supervisor::ManagedBy;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn the_user_unit() {
        let mut spec = example(ManagedBy::SystemdUser);
        spec.environment = vec![("BASIS_HOME".into(), "/home/ada/basis".into())];
        let text = render(&spec).unwrap();
        assert!(
            text.starts_with("# Written by `basis service install`"),
            "{text}"
        );
        assert_eq!(
            lines(&text),
            [
                "[Unit]",
                "Description=basis worker (supervised; reconnects to the compute network)",
                "",
                "[Service]",
                "Type=simple",
                "ExecStart=/usr/local/bin/basis supervise --env /home/ada/.config/basis/worker.env --state-dir /home/ada/.local/state/basis --managed-by systemd-user",
                "Environment=BASIS_HOME=/home/ada/basis",
                "Restart=on-failure",
                "RestartSec=5",
                "RestartPreventExitStatus=2 3",
                "KillMode=mixed",
                "TimeoutStopSec=60",
                "NoNewPrivileges=yes",
                "RestrictSUIDSGID=yes",
                "LockPersonality=yes",
                "RestrictRealtime=yes",
                "UMask=0077",
                "",
                "[Install]",
                "WantedBy=default.target",
            ]
        );
        assert!(
            text.contains("# Hardening. No PrivateDevices=: the GPU runtime needs /dev/nvidia*")
        );
    }

    #[test]
    fn the_system_unit() {
        let text = render(&example(ManagedBy::SystemdSystem)).unwrap();
        assert_eq!(
            lines(&text),
            [
                "[Unit]",
                "Description=basis worker (supervised; reconnects to the compute network)",
                "Wants=network-online.target",
                "After=network-online.target",
                "",
                "[Service]",
                "Type=simple",
                "ExecStart=/usr/local/bin/basis supervise --env /home/ada/.config/basis/worker.env --state-dir /home/ada/.local/state/basis --managed-by systemd-system",
                "User=ada",
                "Restart=on-failure",
                "RestartSec=5",
                "RestartPreventExitStatus=2 3",
                "KillMode=mixed",
                "TimeoutStopSec=60",
                "NoNewPrivileges=yes",
                "ProtectSystem=strict",
                "ProtectHome=read-only",
                "ReadWritePaths=-/home/ada/.local/state/basis",
                "PrivateTmp=yes",
                "ProtectKernelTunables=yes",
                "ProtectKernelModules=yes",
                "ProtectControlGroups=yes",
                "RestrictSUIDSGID=yes",
                "LockPersonality=yes",
                "RestrictRealtime=yes",
                "UMask=0077",
                "",
                "[Install]",
                "WantedBy=multi-user.target",
            ]
        );
    }

    #[test]
    fn paths_with_spaces_and_specials_are_quoted_the_systemd_way() {
        let mut spec = example(ManagedBy::SystemdSystem);
        spec.exe = "/opt/my tools/basis".into();
        spec.env_path = "/home/ada/100% \"real\"/worker$1.env".into();
        spec.state_dir = "/home/ada/st ate".into();
        spec.environment = vec![("XDG_STATE_HOME".into(), "/home/ada/a b\\c".into())];
        let text = render(&spec).unwrap();
        assert!(
            text.contains(
                "ExecStart=\"/opt/my tools/basis\" supervise --env \"/home/ada/100%% \\\"real\\\"/worker$$1.env\" --state-dir \"/home/ada/st ate\" --managed-by systemd-system\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Environment=\"XDG_STATE_HOME=/home/ada/a b\\\\c\"\n"),
            "{text}"
        );
        assert!(
            text.contains("ReadWritePaths=\"-/home/ada/st ate\"\n"),
            "{text}"
        );
        // `$` is literal outside ExecStart; `%` never is.
        assert_eq!(word("a$b%c", Field::Plain).unwrap(), "a$b%%c");
        assert_eq!(word("a$b", Field::Exec).unwrap(), "a$$b");
        assert_eq!(word("a;b", Field::Exec).unwrap(), "\"a;b\"");
    }

    #[test]
    fn unwritable_values_are_refused() {
        let mut spec = example(ManagedBy::SystemdUser);
        spec.env_path = "/home/ada/new\nline/worker.env".into();
        let p = render(&spec).unwrap_err();
        assert_eq!(p.code, ErrorCode::InvalidArgument);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            spec = example(ManagedBy::SystemdUser);
            spec.exe = std::ffi::OsStr::from_bytes(b"/opt/\xffbasis").into();
            assert!(render(&spec).is_err());
        }
    }
}
