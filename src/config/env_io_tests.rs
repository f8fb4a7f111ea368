//! Tests of `worker.env` on disk (docs/FILES.md, "Writing and reading"): mode 0600, atomic replace,
//! symlinks, allowed dirs, token preservation on rewrite, read warnings.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::env_file_tests::{full_env, secret};

use super::*;
use crate::domain::{ErrorCode, Problem, Runtime, WorkerId, WorkerToken};

struct Fx {
    _tmp: TempDir,
    base: PathBuf,
    config: PathBuf,
    allowed: AllowedDirs,
}

impl Fx {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let config = base.join("config");
        let cwd = base.join("cwd");
        fs::create_dir_all(&cwd).unwrap();
        let allowed = AllowedDirs::new(&config, &cwd, []);
        Self {
            _tmp: tmp,
            base,
            config,
            allowed,
        }
    }

    fn env_path(&self) -> PathBuf {
        self.config.join("worker.env")
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes `contents` at `path` with mode 0600, as an env file must have to be read.
fn write_private(path: &Path, contents: impl AsRef<[u8]>) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn mode_is_0600_after_every_write() {
    let fx = Fx::new();
    let path = fx.env_path();
    let env = full_env();
    let first = env.write(&path, &fx.allowed).unwrap();
    assert!(!first.replaced);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&fx.config), 0o700, "created config dir is private");

    let second = env.write(&path, &fx.allowed).unwrap();
    assert!(second.replaced);
    assert_eq!(mode_of(&path), 0o600);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    env.write(&path, &fx.allowed).unwrap();
    assert_eq!(mode_of(&path), 0o600);

    // A pre-existing loose file written by someone else.
    let other = fx.base.join("cwd/worker.env");
    fs::write(&other, "OLD=1\n").unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o644)).unwrap();
    env.write(Path::new("worker.env"), &fx.allowed).unwrap();
    assert_eq!(mode_of(&other), 0o600);
    assert_eq!(dir_names(&fx.config), ["worker.env"]);
}

#[test]
fn write_outcome_lists_keys_and_fingerprint_not_token() {
    let fx = Fx::new();
    let env = full_env();
    let out = env.write(&fx.env_path(), &fx.allowed).unwrap();
    assert_eq!(out.path, fx.env_path());
    assert_eq!(&out.keys[..KNOWN_KEYS.len()], KNOWN_KEYS);
    assert_eq!(
        &out.keys[KNOWN_KEYS.len()..],
        ["CUDA_VISIBLE_DEVICES", "GREETING", "QUOTED", "EMPTY"]
    );
    assert_eq!(
        out.token_fingerprint.as_ref(),
        Some(&env.token.as_ref().unwrap().fingerprint())
    );
    assert!(!format!("{out:?}").contains(&secret(&env)));
}

#[test]
fn symlink_target_refused_and_link_target_untouched() {
    let fx = Fx::new();
    fs::create_dir_all(&fx.config).unwrap();
    let victim = fx.base.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, fx.env_path()).unwrap();
    let err = full_env().write(&fx.env_path(), &fx.allowed).unwrap_err();
    assert!(matches!(err, EnvFileError::Symlink { .. }), "{err:?}");
    assert_eq!(Problem::from(err).code, ErrorCode::EnvPathSymlink);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(dir_names(&fx.config), ["worker.env"]);
    assert!(
        fs::symlink_metadata(fx.env_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn path_through_symlinked_directory_refused() {
    let fx = Fx::new();
    let outside = fx.base.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&fx.config).unwrap();
    symlink(&outside, fx.config.join("sub")).unwrap();
    let err = full_env()
        .write(&fx.config.join("sub/worker.env"), &fx.allowed)
        .unwrap_err();
    assert!(matches!(err, EnvFileError::Symlink { .. }), "{err:?}");
    assert!(dir_names(&outside).is_empty());
}

#[test]
fn interrupted_write_leaves_old_file_and_no_temp() {
    let fx = Fx::new();
    let path = fx.env_path();
    let old = full_env();
    old.write(&path, &fx.allowed).unwrap();
    let before = fs::read(&path).unwrap();

    let mut new = full_env();
    new.worker_id = Some(WorkerId::parse("another").unwrap());
    let prepared = atomic::prepare(&path, new.render().as_bytes(), ENV_FILE_MODE).unwrap();
    assert_eq!(
        dir_names(&fx.config).len(),
        2,
        "temp file sits next to the target"
    );
    drop(prepared); // crash before rename

    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(dir_names(&fx.config), ["worker.env"]);
    let read = WorkerEnv::read(&path).unwrap();
    assert_eq!(read.worker_id.unwrap().as_str(), "gpu-box-1");
}

#[test]
fn rewrite_keeps_token_and_unknown_keys_in_order() {
    let fx = Fx::new();
    let path = fx.env_path();
    fs::create_dir_all(&fx.config).unwrap();
    let token = WorkerToken::generate();
    write_private(
        &path,
        format!(
            "# hand written\nZED=last\nexport BASIS_WORKER_ID=old-name\nALPHA='a b'\n\
             BASIS_WORKER_TOKEN={}\nMIDDLE=m\n",
            token.expose_secret()
        ),
    );

    let mut env = WorkerEnv::read(&path).unwrap();
    env.merge(WorkerEnv {
        worker_id: Some(WorkerId::parse("new-name").unwrap()),
        runtime: Some(Runtime::Echo),
        extra: vec![
            ("ALPHA".into(), "changed".into()),
            ("NEW".into(), "n".into()),
        ],
        ..WorkerEnv::default()
    });
    assert!(!env.ensure_token(), "an existing token is kept");
    env.write(&path, &fx.allowed).unwrap();

    let back = WorkerEnv::read(&path).unwrap();
    assert!(back.token.as_ref().unwrap().ct_eq(&token));
    assert_eq!(back.worker_id.as_ref().unwrap().as_str(), "new-name");
    assert_eq!(back.runtime, Some(Runtime::Echo));
    let extra: Vec<(&str, &str)> = back
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        extra,
        [
            ("ZED", "last"),
            ("ALPHA", "changed"),
            ("MIDDLE", "m"),
            ("NEW", "n")
        ]
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hand written"), "comments are not kept");
    assert!(!text.contains("export"));

    // A new token replaces the old one only when given.
    let mut again = back.clone();
    let fresh = WorkerToken::generate();
    again.merge(WorkerEnv {
        token: Some(fresh.clone()),
        ..WorkerEnv::default()
    });
    assert!(again.token.unwrap().ct_eq(&fresh));
}

#[test]
fn dot_dot_and_outside_refused() {
    let fx = Fx::new();
    let env = full_env();
    for p in [
        PathBuf::from("../worker.env"),
        fx.config.join("../outside/worker.env"),
    ] {
        let err = env.write(&p, &fx.allowed).unwrap_err();
        assert!(
            matches!(err, EnvFileError::ParentComponent { .. }),
            "{err:?}"
        );
        assert_eq!(Problem::from(err).code, ErrorCode::EnvPathNotAllowed);
    }
    let outside = fx.base.join("outside/worker.env");
    let err = env.write(&outside, &fx.allowed).unwrap_err();
    assert!(matches!(err, EnvFileError::NotAllowed { .. }), "{err:?}");
    let problem = Problem::from(err);
    assert_eq!(problem.code, ErrorCode::EnvPathNotAllowed);
    assert!(problem.fix.unwrap().contains("allowed_env_dirs"));
    assert!(!outside.exists());
    assert!(!fx.base.join("outside").exists());
}

#[test]
fn invalid_values_refused_at_write_and_file_untouched() {
    let fx = Fx::new();
    let path = fx.env_path();
    full_env().write(&path, &fx.allowed).unwrap();
    let before = fs::read(&path).unwrap();
    let bad_envs = [
        WorkerEnv {
            ollama_model: Some("llama\nBASIS_WORKER_TOKEN=x".into()),
            ..WorkerEnv::default()
        },
        WorkerEnv {
            ollama_model: Some("#hidden".into()),
            ..WorkerEnv::default()
        },
        WorkerEnv {
            ollama_model: Some(" padded".into()),
            ..WorkerEnv::default()
        },
        WorkerEnv {
            models: vec!["a\"b".into()],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            models: vec!["a,b".into()],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            extra: vec![("BAD KEY".into(), "v".into())],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            extra: vec![("BASIS_WORKER_TOKEN".into(), "v".into())],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            extra: vec![("K".into(), "two\nlines".into())],
            ..WorkerEnv::default()
        },
    ];
    for env in bad_envs {
        let err = env.write(&path, &fx.allowed).unwrap_err();
        assert!(matches!(err, EnvFileError::InvalidValue { .. }), "{err:?}");
        assert_eq!(Problem::from(err).code, ErrorCode::InvalidArgument);
    }
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn read_reports_missing_file_and_path_in_parse_errors() {
    let fx = Fx::new();
    let path = fx.env_path();
    assert!(matches!(
        WorkerEnv::read(&path),
        Err(EnvFileError::Missing { .. })
    ));
    assert!(WorkerEnv::read_optional(&path).unwrap().is_none());
    fs::create_dir_all(&fx.config).unwrap();
    write_private(&path, b"A=1\nB=\xff\n");
    let err = WorkerEnv::read(&path).unwrap_err();
    assert!(
        matches!(err, EnvFileError::Parse { line: 2, .. }),
        "{err:?}"
    );
    write_private(&path, "A=1\n\nbroken\n");
    let err = WorkerEnv::read(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{} line 3", path.display())),
        "{err}"
    );
}

#[test]
fn a_loose_or_foreign_env_file_is_refused_without_the_token() {
    let fx = Fx::new();
    let path = fx.env_path();
    let env = full_env();
    env.write(&path, &fx.allowed).unwrap();
    WorkerEnv::read(&path).unwrap();
    for mode in [0o640, 0o604, 0o644, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = WorkerEnv::read(&path).unwrap_err();
        assert!(
            matches!(err, EnvFileError::LooseMode { .. }),
            "{mode:o}: {err}"
        );
        let problem = Problem::from(err);
        assert_eq!(problem.code, ErrorCode::EnvFileInsecure);
        assert!(
            problem
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("chmod 600")
        );
        assert!(!format!("{problem:?}").contains(&secret(&env)));
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        // Another user's file (root can hand it over; others cannot run this part).
        nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = WorkerEnv::read(&path).unwrap_err();
        assert!(
            matches!(err, EnvFileError::ForeignOwner { owner: 65534, .. }),
            "{err}"
        );
    }
}

#[test]
fn env_targets_tell_worker_env_files_from_others() {
    let fx = Fx::new();
    let path = fx.env_path();
    assert_eq!(env_target(&path).unwrap(), EnvTarget::Missing);
    full_env().write(&path, &fx.allowed).unwrap();
    assert_eq!(env_target(&path).unwrap(), EnvTarget::WorkerEnv);
    let bashrc = fx.base.join("cwd/.bashrc");
    fs::write(&bashrc, "export PATH=\"$HOME/bin:$PATH\"\n").unwrap();
    assert_eq!(env_target(&bashrc).unwrap(), EnvTarget::Foreign);
    // Not a regular file: a directory (and, unread, anything else of its kind).
    assert_eq!(env_target(&fx.base).unwrap(), EnvTarget::Foreign);
    // Larger than any worker env file.
    let big = fx.base.join("cwd/big");
    fs::write(&big, format!("BASIS_X={}\n", "a".repeat(1 << 20))).unwrap();
    assert_eq!(env_target(&big).unwrap(), EnvTarget::Foreign);
    let p = Problem::from(EnvFileError::Foreign { path: bashrc });
    assert_eq!(p.code, ErrorCode::EnvFileForeign);
    assert!(p.message.contains(".bashrc"), "{}", p.message);
    assert!(p.fix.unwrap().contains("force"));
}
