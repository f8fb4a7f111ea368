//! `LogSink`: the one writer of `worker.log`, shared by the worker's stdout/stderr pumps and
//! the supervisor's own events. Every line is redacted before it is written.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::clock;
use super::logs::{self, RotatingLog};
use super::redact::Redactor;
use super::tuning::Tuning;

/// The redacting, rotating writer of the worker log.
#[derive(Debug)]
pub struct LogSink {
    inner: Mutex<Inner>,
    path: PathBuf,
    files: usize,
}

#[derive(Debug)]
struct Inner {
    log: RotatingLog,
    redactor: Redactor,
    /// Set after a failed write, so a full disk logs one warning, not one per line.
    failing: bool,
}

impl LogSink {
    /// Opens `path` with the tuning's size limit and file count.
    pub fn open(path: &Path, tuning: &Tuning, redactor: Redactor) -> std::io::Result<Self> {
        let log = RotatingLog::open(path, tuning.log_max_bytes, tuning.log_files)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                log,
                redactor,
                failing: false,
            }),
            path: path.to_path_buf(),
            files: tuning.log_files,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the redactor (the env file is re-read before each worker start).
    pub fn set_redactor(&self, redactor: Redactor) {
        self.lock().redactor = redactor;
    }

    /// The current redactor (for answering `logs`).
    pub fn redactor(&self) -> Redactor {
        self.lock().redactor.clone()
    }

    /// Writes one line of worker output, redacted.
    pub fn line(&self, text: &str) {
        let mut inner = self.lock();
        let redacted = inner.redactor.redact(text).into_owned();
        let result = inner.log.write_line(&redacted);
        match result {
            Ok(()) => inner.failing = false,
            Err(e) if !inner.failing => {
                inner.failing = true;
                tracing::warn!(path = %self.path.display(), "cannot write the worker log: {e}");
            }
            Err(_) => {}
        }
    }

    /// Writes one supervisor event: `[supervisor 2025-01-01T00:00:00Z] text`.
    pub fn event(&self, text: &str) {
        tracing::info!("{text}");
        self.line(&format!(
            "[supervisor {}] {text}",
            clock::rfc3339(clock::unix_now())
        ));
    }

    /// The last `n` lines across the rotated files, redacted again on the way out.
    pub fn tail(&self, n: usize) -> std::io::Result<Vec<String>> {
        let redactor = self.redactor();
        Ok(logs::tail(&self.path, self.files, n)?
            .iter()
            .map(|l| redactor.redact(l).into_owned())
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
