//! How results reach people and machines: plain lines, colour only on a
//! terminal without NO_COLOR, JSON with `--json`; and text a person wrote
//! made safe to echo to a terminal ([`printable`]).
//!
//! Every line goes out through this module, masked with what this process
//! knows of the secret values (`telefig::redact`): [`outln!`] and [`out!`]
//! for stdout, [`errln!`] for stderr, [`print_json`] for JSON (masked in
//! its strings, so the JSON stays JSON). Nothing else in `cli` prints.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use serde::Serialize;

/// `println!`, masked.
macro_rules! outln {
    ($($arg:tt)*) => {
        println!("{}", telefig::redact::current().mask(&format!($($arg)*)))
    };
}

/// `print!`, masked.
macro_rules! out {
    ($($arg:tt)*) => {
        print!("{}", telefig::redact::current().mask(&format!($($arg)*)))
    };
}

/// `eprintln!`, masked.
macro_rules! errln {
    ($($arg:tt)*) => {
        eprintln!("{}", telefig::redact::current().mask(&format!($($arg)*)))
    };
}

pub(crate) use {errln, out, outln};

pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

pub fn paint(text: &str, code: &str) -> String {
    if color_enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut json = serde_json::to_value(value)?;
    telefig::redact::current().mask_json(&mut json, true);
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// `text` with every character that would drive a terminal rather than be
/// shown by it written as an escape (`\u{1b}`): C0 and C1 controls but
/// newline and tab, DEL, and the Unicode marks that reorder text. Names
/// and values in messages come from files and flags, and an escape
/// sequence among them would otherwise run on the reader's terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    let drives_terminal = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(drives_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if drives_terminal(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A container's output as it streams: whole lines masked (a value is not
/// found across two chunks otherwise), bytes that are not text as they are.
/// A partial line waits for its end, the next chunk of the other stream,
/// or the end of the stream.
pub struct MaskedLines {
    to: Box<dyn Write>,
    partial: Vec<u8>,
}

impl MaskedLines {
    pub fn new(to: Box<dyn Write>) -> Self {
        MaskedLines {
            to,
            partial: Vec::new(),
        }
    }

    /// Write the complete lines of what came so far.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.partial.split_off(end + 1);
        let lines = std::mem::replace(&mut self.partial, rest);
        self.emit(&lines)
    }

    /// Write what is left (the stream ended, or paused).
    pub fn flush(&mut self) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.partial);
        self.emit(&rest)?;
        self.to.flush()
    }

    fn emit(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let redactor = telefig::redact::current();
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            match std::str::from_utf8(line) {
                Ok(text) => self.to.write_all(redactor.mask(text).as_bytes())?,
                Err(_) => self.to.write_all(line)?,
            }
        }
        Ok(())
    }
}

/// Print the error that ends the command, masked, and return its exit
/// code: the full chain first; the deploy system shows only the tail, so
/// the last line is a one-line summary.
pub fn report_failure(err: &anyhow::Error) -> u8 {
    let code = super::exit_code(err);
    // Names and values in it come from files and flags: escaped.
    let chain = format!("{err:#}");
    let chain = printable(&chain);
    errln!("error: {chain}");
    let summary = chain.lines().next().unwrap_or_default();
    errln!("telefig: failed (exit {code}): {summary}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped_and_the_rest_kept() {
        assert!(matches!(
            printable("web: plain\n\tline é"),
            Cow::Borrowed(_)
        ));
        for (text, shown) in [
            ("web\u{1b}[2J", "web\\u{1b}[2J"),
            ("a\rb", "a\\u{d}b"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("x\u{7f}", "x\\u{7f}"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("bell\u{7}", "bell\\u{7}"),
        ] {
            assert_eq!(printable(text), shown, "{text:?}");
        }
    }

    use std::io::Write;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::MaskedLines;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A container's output is masked by line: a value split across two
    /// chunks is found; bytes that are not text pass as they are.
    #[test]
    fn logs_are_masked_by_line() {
        telefig::redact::learn(&telefig::redact::Redactor::new(["logs-secret-41d"]));
        let out = Shared::default();
        let mut lines = MaskedLines::new(Box::new(out.clone()));
        for chunk in [
            &b"token: logs-se"[..],
            b"cret-41d\nnext ",
            b"line\n\xff\xfe\n",
            b"logs-secret-41d\ntail",
        ] {
            lines.write(chunk).unwrap();
        }
        assert_eq!(
            out.0.lock().unwrap().as_slice(),
            b"token: <masked>\nnext line\n\xff\xfe\n<masked>\n"
        );
        lines.flush().unwrap();
        assert!(out.0.lock().unwrap().ends_with(b"<masked>\ntail"));
    }

    /// The output edge holds only if nothing else prints: no `println!`,
    /// `eprintln!`, `print!`, `eprint!` or `dbg!` in the library but here.
    /// (`main.rs` prints clap's usage errors, before anything is known;
    /// `failpoint.rs` names crash points in test builds.)
    #[test]
    fn nothing_prints_but_this_module() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let allowed = ["cli/output.rs", "main.rs", "failpoint.rs"];
        let mut offenders = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if path.extension().is_none_or(|e| e != "rs")
                    || allowed.contains(&relative.as_str())
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    let prints = ["println!(", "print!(", "dbg!("]
                        .iter()
                        .any(|m| code.contains(m));
                    if prints {
                        offenders.push(format!("src/{relative}:{}: {}", i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "print through crate::cli::output (outln!, out!, errln!) so secret values are masked:\n{}",
            offenders.join("\n")
        );
    }
}
