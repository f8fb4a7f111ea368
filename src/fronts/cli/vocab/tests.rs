//! The vocabulary against the real command line (clap) and the real tool catalogue (rmcp),
//! and [`cli`] on the texts operations write.

use clap::CommandFactory;

use super::{ARGS, TOOLS, cli};
use crate::fronts::cli::Cli;

fn subcommand(name: &str) -> clap::Command {
    Cli::command()
        .find_subcommand(name)
        .cloned()
        .unwrap_or_else(|| panic!("the vocabulary names `basis {name}`, which does not exist"))
}

/// `basis claim TASK_ID`: the subcommand exists and takes a positional named `TASK_ID`.
#[test]
fn every_command_the_table_names_exists() {
    for (tool, command) in TOOLS {
        let mut words = command.split(' ');
        assert_eq!(words.next(), Some("basis"), "{tool}");
        let sub = subcommand(words.next().unwrap_or_default());
        for value_name in words {
            let found = sub.get_positionals().any(|a| {
                a.get_value_names()
                    .is_some_and(|n| n.iter().any(|n| n.as_str() == value_name))
            });
            assert!(found, "`{command}` ({tool}): no positional {value_name}");
        }
    }
}

#[test]
fn every_flag_the_table_names_exists_on_its_commands() {
    for (arg, flag, commands) in ARGS {
        assert!(!commands.is_empty(), "{arg}");
        for name in *commands {
            let sub = subcommand(name);
            let found = match flag.strip_prefix("--") {
                Some(long) => sub.get_arguments().any(|a| a.get_long() == Some(long)),
                None => sub.get_positionals().any(|a| {
                    a.get_value_names()
                        .is_some_and(|n| n.iter().any(|n| n.as_str() == *flag))
                }),
            };
            assert!(found, "{arg}: `basis {name}` has no {flag}");
        }
    }
}

/// Every tool has its command, and every tool argument that is an identifier (it has a '_')
/// has its flag: a new tool or argument cannot leak into human output untranslated.
#[test]
fn the_table_covers_every_tool_and_every_identifier_argument() {
    let router = crate::fronts::mcp::tool_router(false);
    for route in router.map.values() {
        let tool = &route.attr;
        assert!(
            TOOLS.iter().any(|(t, _)| *t == tool.name),
            "tool {} has no command in the vocabulary",
            tool.name
        );
        let properties = tool
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for arg in properties.iter().filter(|a| a.contains('_')) {
            assert!(
                ARGS.iter().any(|(a, _, _)| a == arg),
                "argument {arg} of {} has no flag in the vocabulary",
                tool.name
            );
        }
    }
}

#[test]
fn tools_become_commands_and_arguments_become_flags() {
    assert_eq!(
        cli("claim a matching open task with claim_task, then execute_task"),
        "claim a matching open task with `basis claim TASK_ID`, then `basis execute TASK_ID`"
    );
    assert_eq!(
        cli("wait_s must be at most 300; omit wait_s"),
        "--wait must be at most 300; omit --wait"
    );
    assert_eq!(
        cli("worker_id: must not contain '_'"),
        "--worker-id: must not contain '_'"
    );
}

#[test]
fn a_command_already_given_replaces_its_tool() {
    assert_eq!(
        cli("start the worker with start_worker (`basis start`)"),
        "start the worker with `basis start`"
    );
    assert_eq!(
        cli("register the worker (register_worker / `basis register`) now"),
        "register the worker (`basis register`) now"
    );
    assert_eq!(
        cli("or register_worker with multi_task true (`basis register --multi-task`)."),
        "or `basis register --multi-task`."
    );
    assert_eq!(
        cli("use claim_task with a task_id, then (`basis claim X`)"),
        "use `basis claim TASK_ID` with a TASK_ID, then (`basis claim X`)"
    );
}

#[test]
fn env_keys_backticks_paths_and_other_words_are_kept() {
    for text in [
        "set BASIS_WORKER_ID and BASIS_ORCHESTRATOR_URL",
        "see `worker_id` in basis.toml",
        "read record.worker_id and ?after=<worker_id>",
        "the claim_expiry and output_format of a task",
        "Claim_task is not a tool; neither is fetch_tasks_x",
    ] {
        assert_eq!(cli(text), text);
    }
}
