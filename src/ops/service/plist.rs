//! The launchd property list `basis service install` writes on macOS
//! (`dev.basis.worker.plist`), as a pure function of a [`ServiceSpec`]: built and tested on
//! every OS.

use std::fmt::Write as _;

use super::spec::{ServiceSpec, path_text};
use super::{LAUNCHD_LABEL, MARKER, Scope};
use crate::domain::{ErrorCode, Problem};

/// Seconds launchd waits before restarting a job that exited (systemd's `RestartSec`).
const THROTTLE_S: u32 = 5;
/// Seconds launchd waits after SIGTERM before SIGKILL: the supervisor drains the worker for
/// up to 30 s first.
const EXIT_TIMEOUT_S: u32 = 60;
/// umask 077, in decimal (property lists have no octal integers).
const UMASK: u32 = 0o077;

/// `value` escaped for XML character data; control characters (invalid in XML 1.0, and
/// never part of a sane path) are refused.
fn xml(value: &str) -> Result<String, Problem> {
    if value.chars().any(char::is_control) {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("{value:?} cannot be written into a property list (a control character)"),
        )
        .with_fix("use paths without newlines or other control characters"));
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    Ok(out)
}

fn key_string(out: &mut String, indent: &str, key: &str, value: &str) -> Result<(), Problem> {
    let _ = writeln!(out, "{indent}<key>{}</key>", xml(key)?);
    let _ = writeln!(out, "{indent}<string>{}</string>", xml(value)?);
    Ok(())
}

/// The property list's text.
pub fn render(spec: &ServiceSpec) -> Result<String, Problem> {
    let mut p = String::new();
    p.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    p.push_str("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
    let _ = writeln!(
        p,
        "<!-- {MARKER}; `basis service uninstall` removes it. -->"
    );
    p.push_str("<plist version=\"1.0\">\n<dict>\n");
    key_string(&mut p, "\t", "Label", LAUNCHD_LABEL)?;
    p.push_str("\t<key>ProgramArguments</key>\n\t<array>\n");
    let _ = writeln!(p, "\t\t<string>{}</string>", xml(path_text(&spec.exe)?)?);
    for arg in spec.supervise_args()? {
        let _ = writeln!(p, "\t\t<string>{}</string>", xml(&arg)?);
    }
    p.push_str("\t</array>\n");
    if !spec.environment.is_empty() {
        p.push_str("\t<key>EnvironmentVariables</key>\n\t<dict>\n");
        for (name, value) in &spec.environment {
            key_string(&mut p, "\t\t", name, value)?;
        }
        p.push_str("\t</dict>\n");
    }
    if spec.scope() == Scope::System {
        key_string(&mut p, "\t", "UserName", &spec.account.name)?;
    }
    // Started at load (login, or boot for a daemon); restarted only when it did not exit 0,
    // so a clean `basis stop` stays stopped.
    p.push_str("\t<key>RunAtLoad</key>\n\t<true/>\n");
    p.push_str("\t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n");
    let _ = writeln!(
        p,
        "\t<key>ThrottleInterval</key>\n\t<integer>{THROTTLE_S}</integer>"
    );
    let _ = writeln!(
        p,
        "\t<key>ExitTimeOut</key>\n\t<integer>{EXIT_TIMEOUT_S}</integer>"
    );
    let _ = writeln!(p, "\t<key>Umask</key>\n\t<integer>{UMASK}</integer>");
    let log = spec.supervisor_log();
    key_string(&mut p, "\t", "StandardOutPath", path_text(&log)?)?;
    key_string(&mut p, "\t", "StandardErrorPath", path_text(&log)?)?;
    p.push_str("</dict>\n</plist>\n");
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::service::spec::example;
    use crate::supervisor::ManagedBy;

    const AGENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `basis service install`; `basis service uninstall` removes it. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>dev.basis.worker</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/local/bin/basis</string>
		<string>supervise</string>
		<string>--env</string>
		<string>/home/ada/.config/basis/worker.env</string>
		<string>--state-dir</string>
		<string>/home/ada/.local/state/basis</string>
		<string>--managed-by</string>
		<string>launchd-agent</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>ExitTimeOut</key>
	<integer>60</integer>
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardOutPath</key>
	<string>/home/ada/.local/state/basis/logs/supervisor.log</string>
	<key>StandardErrorPath</key>
	<string>/home/ada/.local/state/basis/logs/supervisor.log</string>
</dict>
</plist>
"#;

    #[test]
    fn the_agent_plist() {
        assert_eq!(render(&example(ManagedBy::LaunchdAgent)).unwrap(), AGENT);
    }

    #[test]
    fn the_daemon_plist_names_the_user_and_passes_the_environment() {
        let mut spec = example(ManagedBy::LaunchdDaemon);
        spec.environment = vec![("BASIS_HOME".into(), "/Users/ada/b&b <x>".into())];
        let text = render(&spec).unwrap();
        assert!(text.contains("\t<key>UserName</key>\n\t<string>ada</string>\n"));
        assert!(text.contains(concat!(
            "\t<key>EnvironmentVariables</key>\n\t<dict>\n",
            "\t\t<key>BASIS_HOME</key>\n\t\t<string>/Users/ada/b&amp;b &lt;x&gt;</string>\n",
            "\t</dict>\n"
        )));
        assert!(text.contains("<string>launchd-daemon</string>"));
    }

    #[test]
    fn control_characters_are_refused() {
        let mut spec = example(ManagedBy::LaunchdAgent);
        spec.state_dir = "/Users/ada/a\u{1}b".into();
        assert_eq!(render(&spec).unwrap_err().code, ErrorCode::InvalidArgument);
    }
}
