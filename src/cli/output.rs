//! How results reach people and machines: plain lines, colour only on a
//! terminal without NO_COLOR, JSON with `--json`; and text a person wrote
//! made safe to echo to a terminal ([`printable`]).

use std::borrow::Cow;
use std::io::IsTerminal;

use serde::Serialize;

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
    println!("{}", serde_json::to_string_pretty(value)?);
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
}
