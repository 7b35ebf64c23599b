//! Text from outside in a log line: job ids, names, request values, script output, error
//! messages that quote them. None of it may start a line of its own or fill the disk.
//!
//! - [`logged`] is what every log line uses for such a value: control characters (and the
//!   Unicode line and paragraph separators) shown escaped as Rust writes them (`\n`, `\r`,
//!   `\u{0}`, `\u{1b}`), so no value can end a line and forge the next one, or put a NUL or a
//!   terminal escape in the file; and at most [`MAX_VALUE_BYTES`] of it shown, then how much
//!   more there was (`… [899800 more bytes]`).
//! - [`logged_within`] is the same with another bound ([`MAX_MESSAGE_BYTES`] for an error
//!   message or a script's output line).
//! - [`guard_line`] is the last defence, in the log writer: a formatted event that still
//!   holds a control character (a value logged without [`logged`]) is escaped the same way,
//!   and a line is cut at [`MAX_LINE_BYTES`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Bytes of one value (an id, a name, a reason) shown in a log line; a job id (at most 191
/// bytes) is always shown whole.
pub const MAX_VALUE_BYTES: usize = 200;

/// Bytes of one message from outside shown in a log line: an error that quotes a request's
/// value, a run's reason, a line of a script's output.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Bytes of one log line written at most, whatever it holds.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// A user's value fit for a log line: escaped, and bounded at [`MAX_VALUE_BYTES`].
pub fn logged(text: &str) -> Cow<'_, str> {
    logged_within(text, MAX_VALUE_BYTES)
}

/// [`logged`] with a bound of `max_bytes` (cut on a character boundary).
pub fn logged_within(text: &str, max_bytes: usize) -> Cow<'_, str> {
    let end = floor_char_boundary(text, max_bytes);
    let kept = &text[..end];
    if end == text.len() && !kept.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut line = String::with_capacity(kept.len() + 24);
    escape_into(&mut line, kept);
    if end < text.len() {
        let _ = write!(line, "… [{} more bytes]", text.len() - end);
    }
    Cow::Owned(line)
}

/// Appends a formatted log event (`line`, ending in a newline) to `out`: as it is when it
/// holds nothing unsafe, which is the rule; otherwise escaped as [`logged`] escapes, with its
/// one final newline kept, and cut at [`MAX_LINE_BYTES`].
pub(crate) fn guard_line(out: &mut Vec<u8>, line: &[u8]) {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let text = String::from_utf8_lossy(body);
    let safe = body.len() <= MAX_LINE_BYTES && !text.contains(unsafe_char);
    if safe && matches!(text, Cow::Borrowed(_)) {
        out.extend_from_slice(line);
        return;
    }
    out.extend_from_slice(logged_within(&text, MAX_LINE_BYTES).as_bytes());
    out.push(b'\n');
}

/// A character that must not reach a log line as it is: a control character other than tab,
/// or a line or paragraph separator.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}')
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

/// The largest character boundary of `text` at or below `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    let mut end = index;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_a_line_or_hide_in_it() {
        assert_eq!(logged("plain id-1 é ✓\ttab"), "plain id-1 é ✓\ttab");
        assert!(matches!(logged("plain"), Cow::Borrowed(_)));
        assert_eq!(
            logged("a\nFAKE  INFO forged\r\0\u{1b}[31m\u{85}\u{2028}"),
            "a\\nFAKE  INFO forged\\r\\u{0}\\u{1b}[31m\\u{85}\\u{2028}"
        );
    }

    #[test]
    fn values_are_bounded_on_a_character_boundary() {
        let id = "i".repeat(191);
        assert_eq!(logged(&id), id, "an id is shown whole");
        let name = format!(
            "{}é{}",
            "x".repeat(MAX_VALUE_BYTES - 1),
            "y".repeat(900_000)
        );
        let shown = logged(&name);
        assert_eq!(
            shown,
            format!("{}… [900002 more bytes]", "x".repeat(MAX_VALUE_BYTES - 1))
        );
        assert_eq!(logged_within("ab\ncd", 3), "ab\\n… [2 more bytes]");
    }

    #[test]
    fn the_writer_guard_keeps_one_line_per_event() {
        let mut out = Vec::new();
        guard_line(&mut out, b"2030-01-01 INFO ok\n");
        guard_line(&mut out, b"2030-01-01 INFO a\nforged\0\n");
        guard_line(&mut out, b"bad utf-8 \xff\n");
        let long = format!("{}\n", "z".repeat(MAX_LINE_BYTES + 10));
        guard_line(&mut out, long.as_bytes());
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "2030-01-01 INFO ok");
        assert_eq!(lines[1], "2030-01-01 INFO a\\nforged\\u{0}");
        assert_eq!(lines[2], "bad utf-8 \u{fffd}");
        assert!(lines[3].ends_with("… [10 more bytes]"));
        assert_eq!(lines[3].len(), MAX_LINE_BYTES + "… [10 more bytes]".len());
    }
}
