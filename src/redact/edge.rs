//! The process's redactor, which the output edges apply: what this process
//! has learned of the secret values (by value or fingerprint), and a
//! writer that masks with it.

use std::sync::RwLock;

use super::Redactor;

/// The secret values this process knows of, for its edges.
static CURRENT: RwLock<Option<Redactor>> = RwLock::new(None);

/// Add what `more` finds to what this process's edges mask.
pub fn learn(more: &Redactor) {
    if more.is_empty() {
        return;
    }
    let mut current = CURRENT.write().unwrap_or_else(|e| e.into_inner());
    let merged = match current.as_ref() {
        Some(r) => r.merged(more),
        None => more.clone(),
    };
    *current = Some(merged);
}

/// What this process's edges mask.
pub fn current() -> Redactor {
    CURRENT
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// An [`std::io::Write`] that masks with [`current`] what goes through it
/// (the tracing subscriber writes one formatted event per write).
pub struct Writer<W>(pub W);

impl<W: std::io::Write> std::io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(current().mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
