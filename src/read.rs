//! Reading a file telefig was pointed at: the serviceset and platform
//! files, the files under the state dir, the registry certificates and
//! Docker's own configuration.
//!
//! Such a path may name anything: a FIFO that never delivers, `/dev/zero`
//! that never ends, a loop of symbolic links, a file of gigabytes. Every
//! read goes through [`bytes`] (or [`text`]): only a regular file after
//! following symbolic links, checked before it is opened, opened without
//! blocking and checked again once open (it may have been swapped in
//! between), and read up to a size cap. A refusal is an [`io::Error`] that
//! carries a [`Refusal`], so a caller's own handling of "not found" stays
//! as it was.

use std::fs::{Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most a serviceset or platform file may hold. Real ones are a few
/// KiB; one this large still parses in well under a second.
pub const CONFIG_CAP: u64 = 4 << 20;

/// The most a file under the state dir may hold. telefig wrote it; the
/// record of a serviceset at [`CONFIG_CAP`] stays well under this.
pub const STATE_CAP: u64 = 64 << 20;

/// The most a certificate, key or Docker configuration file may hold.
pub const SMALL_CAP: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than the limit of {}", size(*.cap))]
    TooLarge { cap: u64 },
    #[error("it is a loop of symbolic links")]
    Loop,
    #[error("it is not UTF-8 text (line {line}, column {column})")]
    NotUtf8 { line: usize, column: usize },
}

/// The text of the regular file at `path`, at most `cap` bytes. A leading
/// byte-order mark says the file is UTF-8; it is not part of the text.
pub fn text(path: &Path, cap: u64) -> io::Result<String> {
    let text = String::from_utf8(bytes(path, cap)?).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let refusal = Refusal::NotUtf8 {
            line: valid.iter().filter(|b| **b == b'\n').count() + 1,
            column: String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1,
        };
        refused(io::ErrorKind::InvalidData, refusal)
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// The bytes of the regular file at `path`, at most `cap` of them.
pub fn bytes(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a device or a FIFO is itself an act.
    check(&std::fs::metadata(path).map_err(name_loop)?, cap)?;
    // Should a FIFO have taken the file's place since, this open returns
    // at once instead of waiting for a writer, and the check refuses it.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(name_loop)?;
    check(&file.metadata()?, cap)?;
    let mut out = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        // It grew after the check.
        return Err(refused(
            io::ErrorKind::InvalidData,
            Refusal::TooLarge { cap },
        ));
    }
    Ok(out)
}

fn check(meta: &Metadata, cap: u64) -> io::Result<()> {
    let kind = meta.file_type();
    let not_regular = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    };
    if let Some(what) = not_regular {
        return Err(refused(
            io::ErrorKind::InvalidInput,
            Refusal::NotRegular(what),
        ));
    }
    if meta.len() > cap {
        return Err(refused(
            io::ErrorKind::InvalidData,
            Refusal::TooLarge { cap },
        ));
    }
    Ok(())
}

/// "Too many levels of symbolic links (os error 40)" is what the system
/// says; say what it means.
fn name_loop(err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        refused(io::ErrorKind::InvalidInput, Refusal::Loop)
    } else {
        err
    }
}

fn refused(kind: io::ErrorKind, refusal: Refusal) -> io::Error {
    io::Error::new(kind, refusal)
}

/// `4 MiB (4194304 bytes)`.
fn size(bytes: u64) -> String {
    let (value, unit) = match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => (b >> 20, " MiB"),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => (b >> 10, " KiB"),
        b => return format!("{b} bytes"),
    };
    format!("{value}{unit} ({bytes} bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("telefig-read-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn refusal(err: &io::Error) -> Option<&Refusal> {
        err.get_ref()?.downcast_ref()
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused_without_reading() {
        let dir = scratch("kinds");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let a = dir.join("a");
        let b = dir.join("b");
        symlink(&b, &a).unwrap();
        symlink(&a, &b).unwrap();
        let cases: [(&Path, Refusal); 4] = [
            (&fifo, Refusal::NotRegular("a FIFO (named pipe)")),
            (
                Path::new("/dev/zero"),
                Refusal::NotRegular("a character device"),
            ),
            (&dir, Refusal::NotRegular("a directory")),
            (&a, Refusal::Loop),
        ];
        for (path, want) in cases {
            let err = text(path, CONFIG_CAP).unwrap_err();
            assert_eq!(refusal(&err), Some(&want), "{}: {err}", path.display());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_it_is_read() {
        let dir = scratch("cap");
        let file = dir.join("f");
        std::fs::write(&file, "x".repeat(1024)).unwrap();
        assert_eq!(text(&file, 1024).unwrap().len(), 1024);
        let err = text(&file, 1023).unwrap_err();
        assert_eq!(refusal(&err), Some(&Refusal::TooLarge { cap: 1023 }));
        assert_eq!(
            text(&file, 512).unwrap_err().to_string(),
            "it is larger than the limit of 512 bytes"
        );
        assert_eq!(size(CONFIG_CAP), "4 MiB (4194304 bytes)");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn text_drops_a_byte_order_mark_and_names_where_utf8_breaks() {
        let dir = scratch("text");
        let file = dir.join("f");
        std::fs::write(&file, "\u{feff}a: 1\n").unwrap();
        assert_eq!(text(&file, CONFIG_CAP).unwrap(), "a: 1\n");
        std::fs::write(&file, b"a: 1\nb\xc3\xa9: \xff\n").unwrap();
        let err = text(&file, CONFIG_CAP).unwrap_err();
        assert_eq!(
            refusal(&err),
            Some(&Refusal::NotUtf8 { line: 2, column: 5 })
        );
        let missing = text(&dir.join("missing"), CONFIG_CAP).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
