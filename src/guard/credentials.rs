//! Credential files recognised by their text: a basis env file, AWS credentials, `.npmrc`,
//! `.pypirc`, `.netrc`, git credentials (a URL with a password), a Docker config, a kubeconfig,
//! Google application credentials, an age or PuTTY private key. Used on outputs and files
//! ([`super::check_bytes`]), not on every free-text field: an agent may write "password" or
//! "machine" in a task description, but an output holding such a file is refused.

/// One recogniser and the name it gives.
type Check = (fn(&str) -> bool, &'static str);

/// The kind of credential file `text` holds, named for the refusal, if any.
pub(super) fn find(text: &str) -> Option<&'static str> {
    const CHECKS: &[Check] = &[
        (basis_env, "basis env file"),
        (aws, "AWS credentials"),
        (npmrc, "npm credentials"),
        (pypirc, "PyPI credentials"),
        (netrc, "netrc"),
        (url_password, "a URL with a password (git credentials)"),
        (docker, "Docker credentials"),
        (kubeconfig, "kubeconfig"),
        (google, "Google credentials"),
        (age, "age secret key"),
        (putty, "PuTTY private key"),
    ];
    CHECKS
        .iter()
        .find(|(check, _)| check(text))
        .map(|(_, name)| *name)
}

/// Whether `key` occurs as a key followed by `=` or `:` (spaces and an opening quote
/// allowed) and a value of at least `min` bytes of `class`.
fn assigned(text: &str, key: &str, min: usize, class: fn(u8) -> bool) -> bool {
    text.match_indices(key).any(|(at, _)| {
        let mut rest = &text.as_bytes()[at + key.len()..];
        while let [b' ' | b'\t', tail @ ..] = rest {
            rest = tail;
        }
        let [b'=' | b':', tail @ ..] = rest else {
            return false;
        };
        rest = tail;
        while let [b' ' | b'\t' | b'"' | b'\'', tail @ ..] = rest {
            rest = tail;
        }
        rest.iter().take_while(|b| class(**b)).count() >= min
    })
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-')
}

fn basis_env(text: &str) -> bool {
    text.contains("BASIS_")
        && [
            "BASIS_WORKER_TOKEN",
            "BASIS_DEVICE_KEY",
            "BASIS_DEVICE_KEY_NEXT",
            "BASIS_EVALUATOR_KEY",
            "BASIS_ADMIN_KEY",
            "BASIS_ENROLLMENT_KEY",
        ]
        .iter()
        .any(|key| assigned(text, key, 16, token_byte))
}

fn aws(text: &str) -> bool {
    [
        "aws_secret_access_key",
        "AWS_SECRET_ACCESS_KEY",
        "aws_session_token",
        "AWS_SESSION_TOKEN",
    ]
    .iter()
    .any(|key| assigned(text, key, 16, base64_byte))
}

fn npmrc(text: &str) -> bool {
    ["_authToken", "_auth", "_password"]
        .iter()
        .any(|key| assigned(text, key, 8, base64_byte))
}

fn pypirc(text: &str) -> bool {
    ["[pypi]", "[testpypi]", "[distutils]"]
        .iter()
        .any(|section| text.contains(section))
        && text.lines().any(|line| {
            let line = line.trim_start();
            line.starts_with("password") && assigned(line, "password", 1, |b| b > b' ')
        })
}

/// A `machine <host>` entry with a `password <value>` on its line or the next two.
fn netrc(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let mut words = line.split_whitespace();
        if words.next() != Some("machine") || words.next().is_none() {
            return false;
        }
        let entry: Vec<&str> = lines[i..lines.len().min(i + 3)]
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect();
        entry
            .windows(2)
            .any(|pair| pair[0] == "password" && !pair[1].is_empty())
    })
}

/// `scheme://user:password@host` with a password of 8 or more URL characters, at least one
/// a digit or a capital (so `user:pass@` examples and `${TOKEN}` placeholders pass).
fn url_password(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices("://").any(|(at, _)| {
        let authority: &[u8] = bytes[at + 3..]
            .split(|b| matches!(b, b'/' | b'?' | b'#') || b.is_ascii_whitespace())
            .next()
            .unwrap_or_default();
        let Some(user_end) = authority.iter().rposition(|b| *b == b'@') else {
            return false;
        };
        let userinfo = &authority[..user_end];
        let Some(colon) = userinfo.iter().position(|b| *b == b':') else {
            return false;
        };
        let password = &userinfo[colon + 1..];
        password.len() >= 8
            && password
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%!*+".contains(b))
            && password
                .iter()
                .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    })
}

fn docker(text: &str) -> bool {
    text.contains("\"auths\"") && assigned(text, "\"auth\"", 8, base64_byte)
}

fn kubeconfig(text: &str) -> bool {
    assigned(text, "client-key-data", 16, base64_byte)
}

fn google(text: &str) -> bool {
    (text.contains("\"refresh_token\"") && text.contains("\"client_secret\""))
        || (text.contains("\"private_key_id\"") && text.contains("\"private_key\""))
}

fn age(text: &str) -> bool {
    text.contains("AGE-SECRET-KEY-1")
}

fn putty(text: &str) -> bool {
    text.contains("PuTTY-User-Key-File-") && text.contains("Private-Lines:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_files_are_recognised() {
        let cases = [
            (
                "BASIS_WORKER_ID=gpu-1\nBASIS_WORKER_TOKEN=0123456789abcdef0123\n",
                "basis env file",
            ),
            (
                "[default]\naws_access_key_id = AKIA0000\naws_secret_access_key = abcdEFGH1234abcdEFGH\n",
                "AWS credentials",
            ),
            (
                "//registry.npmjs.org/:_authToken=npm_abcdefgh1234",
                "npm credentials",
            ),
            (
                "[distutils]\nindex-servers = pypi\n[pypi]\nusername = me\npassword = hunter22\n",
                "PyPI credentials",
            ),
            (
                "machine github.com\n  login me\n  password s3cret\n",
                "netrc",
            ),
            ("machine example.org login me password x", "netrc"),
            (
                "https://me:Abcdefgh12@github.com\n",
                "a URL with a password (git credentials)",
            ),
            (
                "{\"auths\": {\"ghcr.io\": {\"auth\": \"bWU6c2VjcmV0MTIz\"}}}",
                "Docker credentials",
            ),
            (
                "users:\n- name: me\n  user:\n    client-key-data: LS0tLS1CRUdJTiBSU0Eg\n",
                "kubeconfig",
            ),
            (
                "{\"client_id\": \"x\", \"client_secret\": \"y\", \"refresh_token\": \"z\"}",
                "Google credentials",
            ),
            ("AGE-SECRET-KEY-1QQQQ", "age secret key"),
        ];
        for (text, name) in cases {
            assert_eq!(find(text), Some(name), "{text}");
        }
    }

    #[test]
    fn prose_about_credentials_passes() {
        for text in [
            "Each machine needs a password set by the admin.",
            "Set BASIS_WORKER_TOKEN=<token> in worker.env.",
            "postgres://user:pass@localhost/db and https://${USER}:${TOKEN}@host",
            "https://example.com/a:b@c is not a password",
            "the auths section of a docker config",
            "aws_secret_access_key is read from ~/.aws/credentials",
            "[pypi] uploads need a token",
        ] {
            assert_eq!(find(text), None, "{text}");
        }
    }
}
