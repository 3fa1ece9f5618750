//! The one escaping function for text that came from a hub (names, firmware,
//! Wi-Fi strength, JSON keys, mDNS TXT values, error details quoting an
//! answer) on its way to a terminal: control characters are shown visibly
//! (`\x1b`, `\r`, `\u{9b}`), never emitted, so a hub cannot clear the
//! screen, retitle the terminal, move the cursor or print a line that looks
//! like the harness's own verdict. JSON the harness prints or writes
//! (`--format json`, `discover --json`, `record`, the run record) carries
//! the exact value with those characters as `\uXXXX` escapes
//! ([`json_for_terminal`]), so `cat` or `jq` of it is as safe as the console.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::device::bounded;

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls,
/// DEL, and the Unicode format characters that reorder or hide text
/// (bidirectional overrides and isolates, line/paragraph separators,
/// zero-width characters).
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `s` with every character a terminal would act on replaced by a visible
/// escape: `\x1b` for ESC, `\n`, `\r`, `\t` for those, `\u{202e}` for the
/// others. A backslash is kept as it is (it does nothing on a terminal).
/// Borrowed when nothing needed escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(must_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !must_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Like [`escape`], but keeps line breaks: for the harness's own
/// multi-line messages whose hub-supplied parts were already escaped (or
/// that may contain some), so a hub string can add no control character
/// other than a plain newline, and a newline from a hub in such text is
/// shown as the next line of an indented block, not as a fake verdict.
pub fn escape_keep_newlines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && must_escape(c)) {
        return Cow::Borrowed(s);
    }
    let parts: Vec<Cow<'_, str>> = s.split('\n').map(escape).collect();
    Cow::Owned(parts.join("\n"))
}

/// Escape and bound a hub-supplied string for a one-line message: at most
/// `max` characters, then `…`.
pub fn escape_short(s: &str, max: usize) -> String {
    bounded(&escape(s), max)
}

/// Whether `c` is one that JSON and XML writers leave as itself although a
/// terminal acts on it: DEL, C1 controls and the format characters of
/// [`must_escape`] (serde_json and quick_xml escape only C0 controls, and
/// not even all of those).
pub(crate) fn raw_in_markup(c: char) -> bool {
    c as u32 >= 0x7f && must_escape(c)
}

/// JSON text as serde_json wrote it, with every character a terminal would
/// act on (`\u{9b}`, `\u{202e}`, DEL ...) written as a `\uXXXX` escape. The
/// document means exactly the same: outside strings serde_json writes only
/// ASCII, and inside one an escape decodes to the same character. Every
/// JSON text the harness prints or writes goes through here.
pub fn json_for_terminal(json: String) -> String {
    if !json.chars().any(raw_in_markup) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw_in_markup(c) {
            // Every such character is in the Basic Multilingual Plane.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_never_emitted() {
        let hostile = "Desk\x1b[2J\x1b]0;pwned\x07\r\ntest result: ok.\u{9b}31m\u{202e}x\x7f";
        let e = escape(hostile);
        assert_eq!(
            e,
            "Desk\\x1b[2J\\x1b]0;pwned\\x07\\r\\ntest result: ok.\\u{9b}31m\\u{202e}x\\x7f"
        );
        assert!(!e.chars().any(must_escape), "{e}");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["Vege_A6_20", "5.1.1", "-29", "Küche ☀", r"C:\path"] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn newlines_can_be_kept_for_own_multi_line_text() {
        assert_eq!(escape_keep_newlines("a\nb\x1b"), "a\nb\\x1b");
        assert_eq!(escape_keep_newlines("a\nb"), "a\nb");
    }

    #[test]
    fn json_keeps_the_value_and_shows_no_terminal_control() {
        let value = serde_json::json!({"name": "a\u{9b}31m\u{202e}b\u{2028}\u{7f}\u{1b}ü☀"});
        let text = json_for_terminal(serde_json::to_string(&value).unwrap());
        assert_eq!(text, r#"{"name":"a\u009b31m\u202eb\u2028\u007f\u001bü☀"}"#);
        assert!(!text.chars().any(must_escape), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        let plain = serde_json::to_string_pretty(&serde_json::json!({"a": [1, "ü"]})).unwrap();
        assert_eq!(json_for_terminal(plain.clone()), plain);
    }

    #[test]
    fn short_form_is_bounded() {
        assert_eq!(escape_short("abcdef", 3), "abc…");
        assert_eq!(escape_short("a\x1b", 10), "a\\x1b");
    }
}
