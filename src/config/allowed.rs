//! `AllowedDirs`: where `worker.env` may be written — the config dir, the current dir and the
//! `allowed_env_dirs` of `basis.toml` — and the path check every write goes through.
//!
//! A path is accepted when, after joining a relative path to the current dir and dropping `.`
//! components, it lies strictly inside an allowed dir, no existing component below that dir
//! (the file included) is a symbolic link, and its existing parent canonicalises to a place
//! inside an allowed dir. Paths with `..` are refused outright. An allowed dir itself may be a
//! symlink (a dotfiles-managed `~/.config`, say): it is trusted as configured.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::atomic;
use super::error::EnvFileError;
use super::settings::Settings;

/// The directories env files may be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedDirs {
    cwd: PathBuf,
    roots: Vec<PathBuf>,
}

/// Joins a relative `path` to `cwd` and drops `.` components. Callers refuse `..` first.
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    joined
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

fn has_parent_component(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

impl AllowedDirs {
    /// `config_dir`, `cwd` (which must be absolute) and `extra`, in that order. Relative
    /// entries of `extra` are taken relative to `cwd`.
    pub fn new(
        config_dir: impl Into<PathBuf>,
        cwd: impl Into<PathBuf>,
        extra: impl IntoIterator<Item = PathBuf>,
    ) -> Self {
        let cwd = absolute(Path::new("/"), &cwd.into());
        let mut roots = vec![absolute(&cwd, &config_dir.into()), cwd.clone()];
        roots.extend(extra.into_iter().map(|p| absolute(&cwd, &p)));
        roots.dedup();
        Self { cwd, roots }
    }

    /// The config dir of `settings`, the process's current dir, and `allowed_env_dirs`.
    pub fn from_settings(settings: &Settings) -> Result<Self, EnvFileError> {
        let cwd = std::env::current_dir().map_err(|source| EnvFileError::Io {
            op: "find the current directory",
            path: PathBuf::from("."),
            source,
        })?;
        Ok(Self::new(
            settings.dirs.config_dir.clone(),
            cwd,
            settings.allowed_env_dirs.iter().cloned(),
        ))
    }

    /// The allowed directories, as configured.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Each root as configured, then its canonical form where it exists and differs.
    fn roots_with_canonical(&self) -> Vec<PathBuf> {
        let mut all = self.roots.clone();
        for root in &self.roots {
            if let Ok(canonical) = root.canonicalize()
                && !all.contains(&canonical)
            {
                all.push(canonical);
            }
        }
        all
    }

    fn not_allowed(&self, path: PathBuf) -> EnvFileError {
        EnvFileError::NotAllowed {
            path,
            allowed: self.roots.clone(),
        }
    }

    /// Checks `path` for writing an env file and returns it absolute and normalised.
    pub fn check(&self, path: &Path) -> Result<PathBuf, EnvFileError> {
        if has_parent_component(path) {
            return Err(EnvFileError::ParentComponent {
                path: path.to_path_buf(),
            });
        }
        let abs = absolute(&self.cwd, path);
        let Some(parent) = abs.parent().filter(|_| abs.file_name().is_some()) else {
            return Err(self.not_allowed(abs));
        };
        let roots = self.roots_with_canonical();
        let symlink_error = |err: &io::Error, abs: &Path| {
            atomic::symlink_refused(err).map(|link| EnvFileError::Symlink {
                path: abs.to_path_buf(),
                link: link.to_path_buf(),
            })
        };

        let Some(root) = roots.iter().find(|r| abs.starts_with(r) && abs != **r) else {
            // Not inside any root as written. If it resolves into one, it goes through a
            // symlink: say so rather than "not allowed".
            if let Some(link) = first_symlink(&abs)
                && let Some(resolved) = resolve_existing(&abs)
                && roots.iter().any(|r| resolved.starts_with(r))
            {
                return Err(EnvFileError::Symlink { path: abs, link });
            }
            return Err(self.not_allowed(abs));
        };
        atomic::refuse_symlinks_below(root, &abs).map_err(|e| {
            symlink_error(&e, &abs).unwrap_or_else(|| EnvFileError::Io {
                op: "inspect",
                path: abs.clone(),
                source: e,
            })
        })?;
        // Belt and braces: where the parent exists, its real location must be allowed too.
        if let Ok(real_parent) = parent.canonicalize()
            && !roots.iter().any(|r| real_parent.starts_with(r))
        {
            return Err(self.not_allowed(abs));
        }
        Ok(abs)
    }
}

/// The first component of the absolute `path` that is a symbolic link, if any.
fn first_symlink(path: &Path) -> Option<PathBuf> {
    let mut current = PathBuf::new();
    for component in path.components() {
        current.push(component);
        if matches!(atomic::is_symlink(&current), Ok(true)) {
            return Some(current);
        }
    }
    None
}

/// `path` with its deepest existing ancestor canonicalised and the rest appended.
fn resolve_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().find_map(|ancestor| {
        let real = ancestor.canonicalize().ok()?;
        let rest = path.strip_prefix(ancestor).ok()?;
        Some(real.join(rest))
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use tempfile::TempDir;

    use super::*;

    struct Fixture {
        _tmp: TempDir,
        config: PathBuf,
        cwd: PathBuf,
        extra: PathBuf,
        outside: PathBuf,
        allowed: AllowedDirs,
    }

    fn fixture() -> Fixture {
        let tmp = TempDir::new().unwrap();
        // Canonical base so the lexical and real paths agree.
        let base = tmp.path().canonicalize().unwrap();
        let config = base.join("config");
        let cwd = base.join("cwd");
        let extra = base.join("extra");
        let outside = base.join("outside");
        for d in [&cwd, &extra, &outside] {
            fs::create_dir_all(d).unwrap();
        }
        // The config dir does not exist yet: first run.
        let allowed = AllowedDirs::new(&config, &cwd, [extra.clone()]);
        Fixture {
            _tmp: tmp,
            config,
            cwd,
            extra,
            outside,
            allowed,
        }
    }

    #[test]
    fn inside_allowed_dirs_accepted() {
        let f = fixture();
        let a = &f.allowed;
        assert_eq!(
            a.check(&f.config.join("worker.env")).unwrap(),
            f.config.join("worker.env")
        );
        assert_eq!(
            a.check(Path::new("worker.env")).unwrap(),
            f.cwd.join("worker.env")
        );
        assert_eq!(
            a.check(Path::new("./sub/./w.env")).unwrap(),
            f.cwd.join("sub/w.env")
        );
        assert_eq!(
            a.check(&f.extra.join("w.env")).unwrap(),
            f.extra.join("w.env")
        );
        assert_eq!(a.dirs(), [f.config.clone(), f.cwd.clone(), f.extra.clone()]);
    }

    #[test]
    fn dot_dot_refused_outright() {
        let f = fixture();
        for p in [
            PathBuf::from("../outside/worker.env"),
            f.config.join("../outside/worker.env"),
            f.cwd.join("sub/../worker.env"), // would stay inside, still refused
        ] {
            let err = f.allowed.check(&p).unwrap_err();
            assert!(
                matches!(err, EnvFileError::ParentComponent { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(".."));
        }
    }

    #[test]
    fn outside_allowed_dirs_refused() {
        let f = fixture();
        for p in [
            f.outside.join("worker.env"),
            PathBuf::from("/etc/worker.env"),
            f.cwd.clone(), // the directory itself is not a file inside it
            PathBuf::from("/"),
        ] {
            let err = f.allowed.check(&p).unwrap_err();
            assert!(
                matches!(err, EnvFileError::NotAllowed { .. }),
                "{p:?}: {err:?}"
            );
        }
        // A sibling whose name merely starts with an allowed dir's name.
        let sibling = PathBuf::from(format!("{}-evil/worker.env", f.cwd.display()));
        assert!(matches!(
            f.allowed.check(&sibling),
            Err(EnvFileError::NotAllowed { .. })
        ));
    }

    #[test]
    fn symlinked_file_refused() {
        let f = fixture();
        let victim = f.outside.join("victim");
        fs::write(&victim, "x").unwrap();
        symlink(&victim, f.cwd.join("worker.env")).unwrap();
        let err = f.allowed.check(Path::new("worker.env")).unwrap_err();
        assert!(matches!(err, EnvFileError::Symlink { .. }), "{err:?}");
    }

    #[test]
    fn symlinked_directory_refused() {
        let f = fixture();
        // A link inside an allowed dir pointing outside.
        symlink(&f.outside, f.cwd.join("out")).unwrap();
        let err = f.allowed.check(&f.cwd.join("out/worker.env")).unwrap_err();
        assert!(
            matches!(&err, EnvFileError::Symlink { link, .. } if *link == f.cwd.join("out")),
            "{err:?}"
        );
        // A link outside pointing into an allowed dir.
        symlink(&f.extra, f.outside.join("into")).unwrap();
        let err = f
            .allowed
            .check(&f.outside.join("into/worker.env"))
            .unwrap_err();
        assert!(matches!(err, EnvFileError::Symlink { .. }), "{err:?}");
    }

    #[test]
    fn allowed_root_may_itself_be_a_symlink() {
        let f = fixture();
        let real = f.outside.join("dotfiles");
        fs::create_dir_all(&real).unwrap();
        let linked = f.outside.join("linked-config");
        symlink(&real, &linked).unwrap();
        let allowed = AllowedDirs::new(&linked, &f.cwd, []);
        assert!(allowed.check(&linked.join("worker.env")).is_ok());
        // The real path of the same dir is accepted too.
        assert!(allowed.check(&real.join("worker.env")).is_ok());
    }
}
