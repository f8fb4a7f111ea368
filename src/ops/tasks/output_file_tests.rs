//! Tests of `output_file` confinement: a file in the work directory (by path or bare name) or
//! an allowed_env_dirs directory is read; the env file (directly, through a symlink or a hard
//! link), `~/.netrc`, `~/.ssh` keys, key and env files by name, `../` escapes, files outside,
//! /etc/passwd, /proc, fifos, directories and oversized files are refused without showing
//! what they hold.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::output_file::OutputFiles;
use crate::domain::{ErrorCode, Problem};
use crate::ops::Context;

const SECRET: &str = "hunter2-correct-horse-battery";

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    ctx: Context,
    home: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let basis_home = base.join("basis");
        let url = url::Url::parse("http://127.0.0.1:9").unwrap();
        let ctx = Context::for_home(&basis_home, &url).unwrap();
        fs::create_dir_all(&basis_home).unwrap();
        fs::write(
            ctx.dirs().env_file(),
            format!("BASIS_WORKER_ID=gpu-1\nBASIS_NOTE={SECRET}\n"),
        )
        .unwrap();
        let home = base.join("home");
        fs::create_dir_all(home.join(".ssh")).unwrap();
        fs::write(
            home.join(".netrc"),
            format!("machine x password {SECRET}\n"),
        )
        .unwrap();
        fs::write(home.join(".ssh/id_ed25519"), SECRET).unwrap();
        Fixture {
            _tmp: tmp,
            base,
            ctx,
            home,
        }
    }

    fn files(&self) -> OutputFiles {
        OutputFiles::with_home(&self.ctx, None, Some(self.home.clone())).unwrap()
    }

    fn work(&self) -> PathBuf {
        self.ctx.dirs().work_dir()
    }
}

fn refused(files: &OutputFiles, given: &str, code: ErrorCode) -> Problem {
    let p = files.read(given, 1024).expect_err(given);
    assert_eq!(p.code, code, "{given}: {p:?}");
    let shown = format!("{p} {p:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(p.fix.is_some());
    p
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_work_directory_is_created_private_and_its_files_are_read() {
    let f = Fixture::new();
    let files = f.files();
    let mode = fs::metadata(f.work()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    fs::write(f.work().join("poem.txt"), "fans hum").unwrap();
    assert_eq!(files.read("poem.txt", 1024).unwrap(), b"fans hum");
    let absolute = f.work().join("poem.txt");
    assert_eq!(files.read(s(&absolute), 1024).unwrap(), b"fans hum");
    fs::create_dir_all(f.work().join("sub")).unwrap();
    fs::write(f.work().join("sub/out.bin"), [0u8, 1, 2]).unwrap();
    assert_eq!(files.read("sub/./out.bin", 1024).unwrap(), [0u8, 1, 2]);
    // A symlink that stays inside the work directory is fine.
    symlink(f.work().join("poem.txt"), f.work().join("link.txt")).unwrap();
    assert_eq!(files.read("link.txt", 1024).unwrap(), b"fans hum");
}

#[test]
fn secrets_and_files_outside_are_refused() {
    let f = Fixture::new();
    let files = f.files();
    let env = f.ctx.dirs().env_file();
    let outside = f.base.join("outside.txt");
    fs::write(&outside, SECRET).unwrap();
    fs::write(f.ctx.dirs().state_dir.join("escape.txt"), SECRET).unwrap();
    symlink(&env, f.work().join("innocent.txt")).unwrap();
    symlink(&outside, f.work().join("out-link.txt")).unwrap();
    symlink(&f.base, f.work().join("up")).unwrap();
    fs::hard_link(&env, f.work().join("hard.txt")).unwrap();
    fs::write(f.work().join("copy.txt"), SECRET).unwrap();
    fs::hard_link(f.work().join("copy.txt"), f.base.join("elsewhere.txt")).unwrap();
    for name in [
        ".env",
        "prod.env",
        "server.key",
        "cert.pem",
        "id_rsa",
        ".netrc",
    ] {
        fs::write(f.work().join(name), SECRET).unwrap();
    }
    let cases = [
        s(&env).to_owned(),
        "~/.netrc".to_owned(),
        s(&f.home.join(".netrc")).to_owned(),
        "~/.ssh/id_ed25519".to_owned(),
        s(&f.home.join(".ssh/id_ed25519")).to_owned(),
        "innocent.txt".to_owned(),
        "out-link.txt".to_owned(),
        "up/outside.txt".to_owned(),
        "hard.txt".to_owned(),
        "copy.txt".to_owned(),
        "../escape.txt".to_owned(),
        format!("{}/../escape.txt", s(&f.work())),
        "../../basis/worker.env".to_owned(),
        s(&outside).to_owned(),
        "/etc/passwd".to_owned(),
        "/proc/self/environ".to_owned(),
        ".env".to_owned(),
        "prod.env".to_owned(),
        "server.key".to_owned(),
        "cert.pem".to_owned(),
        "id_rsa".to_owned(),
        ".netrc".to_owned(),
        "sub".to_owned(),
    ];
    fs::create_dir_all(f.work().join("sub")).unwrap();
    for given in cases {
        refused(&files, &given, ErrorCode::OutputFileNotAllowed);
    }
    // The fix names the work directory.
    let p = refused(&files, "/etc/passwd", ErrorCode::OutputFileNotAllowed);
    assert!(p.fix.unwrap().contains(s(&f.work())));
}

#[test]
fn fifos_and_oversized_files_are_refused() {
    let f = Fixture::new();
    let files = f.files();
    let fifo = f.work().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    refused(&files, "pipe", ErrorCode::OutputFileNotAllowed);
    fs::write(f.work().join("big.txt"), vec![b'a'; 1025]).unwrap();
    refused(&files, "big.txt", ErrorCode::PayloadTooLarge);
    refused(&files, "missing.txt", ErrorCode::IoError);
}

#[test]
fn an_allowed_env_dir_is_a_source_too() {
    let mut f = Fixture::new();
    let extra = f.base.join("outputs");
    fs::create_dir_all(&extra).unwrap();
    fs::write(extra.join("answer.json"), "{}").unwrap();
    f.ctx.settings.allowed_env_dirs.push(extra.clone());
    let files = f.files();
    assert_eq!(
        files.read(s(&extra.join("answer.json")), 1024).unwrap(),
        b"{}"
    );
    // Still never an env file there.
    fs::write(extra.join("worker.env"), SECRET).unwrap();
    refused(
        &files,
        s(&extra.join("worker.env")),
        ErrorCode::OutputFileNotAllowed,
    );
}
