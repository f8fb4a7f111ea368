//! `basis service install|uninstall|status`: keep the worker running across reboots under
//! systemd (Linux) or launchd (macOS). CLI only; the logic is `crate::ops::service`.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::service::{Applied, Manager, Scope, Step, StepOutcome, install, status, uninstall};

/// Installs, removes or inspects the service that runs `basis supervise` at boot (system) or
/// login (user): a systemd unit on Linux, a launchd property list on macOS.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Write the unit and enable and start it (or print the commands where systemd or
    /// launchd cannot be reached from here).
    Install(InstallArgs),
    /// Stop and disable the service and remove its unit.
    Uninstall(UninstallArgs),
    /// Show whether the unit is installed, enabled and running.
    Status(StatusArgs),
}

/// Flags every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The machine's service (/etc/systemd/system, /Library/LaunchDaemons; needs root, e.g.
    /// through sudo; the worker runs as the invoking user) instead of your user's.
    #[arg(long)]
    pub system: bool,
    /// Print the structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub common: Common,
    /// The worker env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the unit and the commands; write and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a different unit already installed.
    #[arg(long)]
    pub force: bool,
    /// With --system: let the worker run as root (refused otherwise).
    #[arg(long)]
    pub allow_root: bool,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub common: Common,
    /// Say what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the unit even when basis did not write it.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    match args.command {
        Sub::Install(a) => {
            let input = install::Input {
                env_file: a.env,
                scope: Scope::from_flag(a.common.system),
                dry_run: a.dry_run,
                force: a.force,
                allow_root: a.allow_root,
            };
            let result = install::run(ctx.config_file.as_deref(), &input).await;
            output::render(a.common.json, result, human_install)
        }
        Sub::Uninstall(a) => {
            let input = uninstall::Input {
                scope: Scope::from_flag(a.common.system),
                dry_run: a.dry_run,
                force: a.force,
            };
            output::render(a.common.json, uninstall::run(&input).await, human_uninstall)
        }
        Sub::Status(a) => {
            let input = status::Input {
                scope: Scope::from_flag(a.common.system),
            };
            output::render(a.common.json, status::run(&input).await, human_status)
        }
    }
}

fn kind(manager: Manager, scope: Scope) -> String {
    let scope = match scope {
        Scope::User => "user",
        Scope::System => "system",
    };
    format!("{} {scope} service", manager.name())
}

/// The steps: what ran, or what to run by hand (and why).
fn steps(s: &mut String, steps: &[Step], note: Option<&str>) {
    let manual: Vec<&Step> = steps
        .iter()
        .filter(|st| st.outcome == StepOutcome::NotRun)
        .collect();
    for st in steps.iter().filter(|st| st.outcome != StepOutcome::NotRun) {
        let _ = writeln!(s, "ran: {}", st.command);
    }
    if !manual.is_empty() {
        let why = note.map_or_else(String::new, |n| format!(" ({n})"));
        let _ = writeln!(s, "not run{why}; the commands:");
        for st in manual {
            let _ = writeln!(s, "  {}", st.command);
        }
    }
}

fn human_install(o: &install::Output) -> String {
    let mut s = String::new();
    let what = kind(o.manager, o.scope);
    if o.applied == Applied::DryRun {
        s.push_str(&o.content);
        let verb = match o.change {
            install::FileChange::Created => "would write",
            install::FileChange::Replaced => "would replace",
            install::FileChange::Unchanged => "already installed, unchanged:",
        };
        let _ = writeln!(s, "\n{verb} {} ({what})", o.path);
    } else {
        let verb = match o.change {
            install::FileChange::Created => "wrote",
            install::FileChange::Replaced => "replaced",
            install::FileChange::Unchanged => "already installed, unchanged:",
        };
        let _ = writeln!(s, "{verb} {} ({what})", o.path);
    }
    let _ = writeln!(
        s,
        "  runs `basis supervise` as {} with {} (state in {})",
        o.run_as, o.env_path, o.state_dir
    );
    steps(&mut s, &o.steps, o.manager_note.as_deref());
    if let Some(pid) = o.supervisor_pid {
        let _ = writeln!(s, "enabled and started: supervisor pid {pid}");
    }
    for note in &o.notes {
        let _ = writeln!(s, "note: {note}");
    }
    let _ = write!(s, "next: {}", o.next_step);
    s
}

fn human_uninstall(o: &uninstall::Output) -> String {
    let mut s = String::new();
    let line = match (o.was_installed, o.removed, o.applied) {
        (false, _, _) => format!("not installed: {} does not exist", o.path),
        (true, _, Applied::DryRun) => format!("would remove {}", o.path),
        (true, true, _) => format!("removed {}", o.path),
        (true, false, _) => format!("kept {}", o.path),
    };
    let _ = writeln!(s, "{line}");
    steps(&mut s, &o.steps, o.manager_note.as_deref());
    let _ = write!(s, "next: {}", o.next_step);
    s
}

fn human_status(o: &status::Output) -> String {
    let mut s = String::new();
    let what = kind(o.manager, o.scope);
    let file = match (o.installed, o.written_by_basis) {
        (false, _) => format!("not installed ({} does not exist)", o.path),
        (true, Some(false)) => format!("{} (not written by basis)", o.path),
        (true, _) => o.path.clone(),
    };
    let _ = writeln!(s, "unit:    {file} ({what})");
    if let (Some(enabled), Some(active)) = (&o.enabled, &o.active) {
        let _ = writeln!(s, "enabled: {enabled}");
        let _ = writeln!(s, "active:  {active}");
    } else {
        let why = o.manager_note.as_deref().unwrap_or("not reachable");
        let _ = writeln!(s, "enabled: unknown ({why})");
        let _ = writeln!(s, "active:  unknown");
    }
    let _ = write!(s, "next: {}", o.next_step);
    s
}
