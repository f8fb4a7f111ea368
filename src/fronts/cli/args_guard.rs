//! The command line's secrets guard: every argument passes [`crate::guard`] before clap sees
//! it, so no flag (known, unknown or mistyped) can echo a secret in an error, name a file
//! after it or send it anywhere; and clap's own errors pass the log redactor on their way out.
//!
//! The arguments are checked one by one (the field named is the flag before the value) and
//! then their values joined, so a seed phrase split over several arguments (with flags between
//! them) or a comma list is refused too.
//! A private key given as `--wallet` gets the wallet's own message (`PRIVATE_KEY_REFUSED`).
//! The values of the free-text flags ([`FREE_TEXT_FLAGS`]: an output, a reason, a note) are
//! checked under the guard's free-text rule, so a transaction hash in them passes; every
//! other argument is checked strictly.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use super::Cli;
use super::output;
use crate::domain::Problem;
use crate::guard::{Rule, check_text, check_text_with, redact_line};
use crate::ops::parse::refuse_key_as_wallet;

/// Parses the command line, or prints why not (help, version, a usage error, a refused
/// secret) and returns the exit status.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Cli, ExitCode> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    if let Err(problem) = check(&argv) {
        let json = argv.iter().any(|a| a == "--json");
        return Err(output::failure(json, &problem));
    }
    Cli::try_parse_from(&argv).map_err(|error| {
        let status = ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = error.print();
            }
            _ => {
                let rendered = error.render().to_string();
                for line in rendered.lines() {
                    eprintln!("{}", redact_line(line));
                }
            }
        }
        status
    })
}

/// Flags whose value is free text where a hash may belong (`basis submit --output`, `basis
/// evaluate --reason`, `basis submission dispute --reason`, `basis orchestrator tasks resolve
/// --note`), or is a transaction hash (`basis orchestrator settle mark-paid --tx-hash`).
pub const FREE_TEXT_FLAGS: &[&str] = &["--output", "--reason", "--note", "--tx-hash"];

/// Subcommands whose positional argument may be a hash (`0x` + 64 hex): a receipt's hash
/// (`basis receipt verify`), a key's sha256 (`basis orchestrator keys revoke|set-limits`).
/// Their arguments after the subcommand (the positional and the flags' values, wherever it
/// stands among them) are checked under the free-text rule, so a hash passes and a labelled
/// key, a host secret or a seed phrase does not.
const HASH_POSITIONALS: &[&[&str]] = &[
    &["receipt", "verify"],
    &["orchestrator", "keys", "revoke"],
    &["orchestrator", "keys", "set-limits"],
];

/// The indices in `args` of the values after such a subcommand's words (none for any other).
fn hash_args(args: &[String]) -> Vec<usize> {
    let Some(path) = HASH_POSITIONALS
        .iter()
        .find(|path| args.len() >= path.len() && args[..path.len()] == ***path)
    else {
        return Vec::new();
    };
    (path.len()..args.len())
        .filter(|&i| !args[i].starts_with('-'))
        .collect()
}

/// The guard over every argument (program name excluded), then over all of them together.
fn check(command_line: &[OsString]) -> Result<(), Problem> {
    let args: Vec<String> = command_line
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let free = hash_args(&args);
    for (i, arg) in args.iter().enumerate() {
        if free.contains(&i) {
            check_text_with("argument", arg, Rule::FREE_TEXT)?;
            continue;
        }
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, value),
            _ => match i.checked_sub(1).map(|p| args[p].as_str()) {
                Some(prev) if prev.starts_with('-') && !prev.contains('=') => (prev, arg.as_str()),
                _ => ("argument", arg.as_str()),
            },
        };
        if flag == "--wallet" {
            refuse_key_as_wallet(Some(value))?;
        }
        if FREE_TEXT_FLAGS.contains(&flag) {
            check_text_with(flag, value, Rule::FREE_TEXT)?;
        } else {
            check_text(flag, arg)?;
        }
    }
    // The values alone, joined: flags between the pieces of a split phrase must not hide it.
    // Strictly over the values that pass strictly alone (a key split over two arguments), then
    // as free text over those that pass it alone (a phrase split between an output holding a
    // hash and another argument).
    // The hash positionals were checked alone: beside the subcommand's words (`keys revoke`)
    // a hash would read as a labelled key.
    let values: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| !free.contains(i))
        .map(|(_, a)| a)
        .filter_map(|a| match a.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => Some(value),
            _ if a.starts_with('-') => None,
            _ => Some(a.as_str()),
        })
        .collect();
    for rule in [Rule::Strict, Rule::FREE_TEXT] {
        let passing: Vec<&str> = values
            .iter()
            .copied()
            .filter(|v| check_text_with("", v, rule).is_ok())
            .collect();
        check_text_with("the command line", &passing.join(" "), rule)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorCode;

    const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("basis")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn plain_command_lines_pass() {
        let ok = argv(&[
            "write-env",
            "--wallet",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        ]);
        assert!(check(&ok).is_ok());
    }

    #[test]
    fn a_key_as_wallet_gets_the_wallet_message_anywhere_else_the_generic_one() {
        for args in [
            vec!["write-env", "--wallet", KEY],
            vec!["write-env", &format!("--wallet={KEY}")],
        ] {
            let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
            let problem = check(&argv(&args)).unwrap_err();
            assert_eq!(problem.code, ErrorCode::PrivateKeyRefused);
        }
        let problem = check(&argv(&["logs", "-n", KEY])).unwrap_err();
        assert_eq!(problem.code, ErrorCode::SecretRefused);
        assert!(problem.fix.as_deref().unwrap_or_default().contains("`-n`"));
        assert!(!format!("{problem:?}").contains(KEY));
    }

    #[test]
    fn free_text_flags_take_hashes_and_still_refuse_labelled_keys() {
        let tx = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";
        for ok in [
            argv(&[
                "submit",
                "task-0123",
                "--output",
                &format!("sent in tx {tx}"),
            ]),
            argv(&["submit", "task-0123", &format!("--output={tx}")]),
            argv(&["evaluate", "sub-1", "--score", "90", "--reason", tx]),
            argv(&["orchestrator", "tasks", "resolve", "sub-1", "--note", tx]),
            // The positional a hash names: a receipt's, a key's sha256.
            argv(&["receipt", "verify", tx, "--json"]),
            argv(&["orchestrator", "keys", "revoke", tx]),
            argv(&[
                "orchestrator",
                "keys",
                "set-limits",
                tx,
                "--tokens-per-day",
                "5",
            ]),
        ] {
            assert!(check(&ok).is_ok(), "{ok:?}");
        }
        for refused in [
            argv(&[
                "submit",
                "task-0123",
                "--output",
                &format!("private key: {KEY}"),
            ]),
            argv(&["submit", "task-0123", "--models", tx]),
            argv(&["logs", "-n", tx]),
            argv(&["hash", tx]),
            argv(&["receipt", "verify", &format!("private key {KEY}")]),
            argv(&["receipts", "verify-log", tx]),
            argv(&["orchestrator", "keys", "revoke", &format!("key {KEY}")]),
            // Half a key in each of two strict fields, an output beside them: the strict join
            // of the values that pass alone sees it.
            argv(&[
                "submit",
                "--env",
                &KEY[..32],
                "--models",
                &KEY[32..],
                "--output",
                tx,
            ]),
        ] {
            let problem = check(&refused).unwrap_err();
            assert_eq!(problem.code, ErrorCode::SecretRefused, "{refused:?}");
        }
    }

    #[test]
    fn a_phrase_split_over_arguments_is_refused() {
        let problem = check(&argv(&[
            "write-env",
            "--models",
            "legal-winner-thank-year-wave-sausage",
            "--models=worth-useful-legal-winner-thank-yellow",
        ]))
        .unwrap_err();
        assert_eq!(problem.code, ErrorCode::SecretRefused);
    }
}
