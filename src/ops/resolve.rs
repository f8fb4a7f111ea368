//! `basis orchestrator tasks resolve`: the operator decides a disputed submission
//! (`completed`: the worker is credited; `rejected`: the rejection stands) over the
//! orchestrator's HTTP API with the admin key. The key is read from `BASIS_ADMIN_KEY` or from a
//! file (`--admin-key-file`), never from an argument, and is never printed.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::client::OrchestratorClient;
use crate::domain::{ErrorCode, Problem, SubmissionId, TaskStatus};
use crate::guard::{GuardText as _, HostSecrets, check_free_text, check_text};
use crate::wire::{MAX_DISPUTE_REASON_LEN, ResolveRequest, Submission};

/// The environment variable holding the admin key.
pub const ENV_ADMIN_KEY: &str = "BASIS_ADMIN_KEY";

/// What the operator decided.
#[derive(Debug, Clone)]
pub struct Input {
    pub submission_id: String,
    /// `completed` or `rejected`.
    pub outcome: String,
    pub note: String,
    /// The orchestrator's base URL.
    pub url: String,
    /// A file whose first line is the admin key (else `BASIS_ADMIN_KEY`).
    pub admin_key_file: Option<PathBuf>,
}

fn invalid(message: impl Into<String>, fix: &str) -> Problem {
    Problem::new(ErrorCode::InvalidArgument, message).with_fix(fix)
}

/// The admin key: from the file when given, else from the environment.
pub(crate) fn admin_key(
    file: Option<&PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SecretString, Problem> {
    let key = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                Problem::new(
                    ErrorCode::IoError,
                    format!(
                        "cannot read the admin key file {}: {}",
                        path.display(),
                        e.kind()
                    ),
                )
                .with_fix("Check the path and its permissions (it should be 0600).")
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        None => env(ENV_ADMIN_KEY).unwrap_or_default().trim().to_owned(),
    };
    if key.is_empty() {
        return Err(
            Problem::new(ErrorCode::AdminKeyRequired, "no admin key was given").with_fix(format!(
                "Set {ENV_ADMIN_KEY} or pass --admin-key-file FILE (the key made by \
                 `basis orchestrator keys create --role admin`)."
            )),
        );
    }
    Ok(SecretString::from(key))
}

/// Checks the input, then posts the decision.
pub async fn run(input: Input) -> Result<Submission, Problem> {
    run_with(input, |name| std::env::var(name).ok()).await
}

/// [`run`] with the environment given (for tests).
pub async fn run_with(
    input: Input,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Submission, Problem> {
    input.note.guard_free_text("note")?;
    check_text("submission_id", &input.submission_id)?;
    let id = SubmissionId::parse(input.submission_id.trim()).map_err(|e| {
        invalid(
            e.to_string(),
            "Use the submission_id of the disputed submission (sub- + 32 hex).",
        )
    })?;
    let outcome = match input.outcome.as_str() {
        "completed" => TaskStatus::Completed,
        "rejected" => TaskStatus::Rejected,
        _ => {
            return Err(invalid(
                "outcome must be completed or rejected",
                "completed credits the worker; rejected upholds the rejection.",
            ));
        }
    };
    if input.note.chars().count() > MAX_DISPUTE_REASON_LEN {
        return Err(invalid(
            format!("the note must be at most {MAX_DISPUTE_REASON_LEN} characters"),
            "Shorten the note.",
        ));
    }
    let url = Url::parse(&input.url).map_err(|_| {
        invalid(
            "--url is not a URL",
            "Give the orchestrator's base URL, e.g. http://127.0.0.1:8787.",
        )
    })?;
    let key = admin_key(input.admin_key_file.as_ref(), env)?;
    // The note is free text (a transaction hash may be cited); the admin key never is.
    let known = [secrecy::ExposeSecret::expose_secret(&key).as_bytes()];
    let host = HostSecrets {
        known: &known,
        ..HostSecrets::NONE
    };
    check_free_text("note", &input.note, &host)?;
    let client = OrchestratorClient::new(url, Duration::from_secs(30)).map_err(Problem::from)?;
    let req = ResolveRequest {
        outcome,
        note: input.note,
    };
    client.resolve(&id, &req, &key).await.map_err(Problem::from)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_key_comes_from_the_file_first_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin.key");
        std::fs::write(&file, "basis_admin_abc\n").unwrap();
        let k = admin_key(Some(&file), |_| Some("from-env".into())).unwrap();
        assert_eq!(k.expose_secret(), "basis_admin_abc");
        let k = admin_key(None, |_| Some(" from-env ".into())).unwrap();
        assert_eq!(k.expose_secret(), "from-env");
        let e = admin_key(None, |_| None).unwrap_err();
        assert_eq!(e.code, ErrorCode::AdminKeyRequired);
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_any_request() {
        let base = Input {
            submission_id: format!("sub-{}", "a".repeat(32)),
            outcome: "completed".into(),
            note: String::new(),
            url: "http://127.0.0.1:1".into(),
            admin_key_file: None,
        };
        let cases = [
            Input {
                outcome: "maybe".into(),
                ..base.clone()
            },
            Input {
                submission_id: "sub-x".into(),
                ..base.clone()
            },
            Input {
                note:
                    "private key 4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
                        .into(),
                ..base.clone()
            },
        ];
        for input in cases {
            let e = run_with(input, |_| Some("k".into())).await.unwrap_err();
            assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidArgument | ErrorCode::SecretRefused
                ),
                "{e:?}"
            );
        }
        // The note may cite a hash (it then fails only for want of an orchestrator here), but
        // never this host's admin key, even its bare 64-hex body.
        let body = "ab".repeat(32);
        let admin = format!("basis_admin_{body}");
        let cites = Input {
            note: format!("paid in tx 0x{}", "cd".repeat(32)),
            ..base.clone()
        };
        let e = run_with(cites, |_| Some(admin.clone())).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::OrchestratorUnreachable, "{e:?}");
        let leaks = Input {
            note: format!("see {body}"),
            ..base.clone()
        };
        let e = run_with(leaks, |_| Some(admin.clone())).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::SecretRefused, "{e:?}");
        let e = run_with(base, |_| None).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AdminKeyRequired);
    }
}
