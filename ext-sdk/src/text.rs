//! Shortening text for messages: one rule for every place that quotes something unbounded (a
//! JSON value in a type error, an HTML page, an answer body, an error chain).

use std::borrow::Cow;

/// What a shortened text ends with.
pub const ELLIPSIS: &str = "...";

/// `text` cut after `max_chars` characters (never inside one), with [`ELLIPSIS`] appended when
/// anything was cut; unchanged (and not copied) when it is short enough.
pub fn truncate(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => Cow::Owned(format!("{}{ELLIPSIS}", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_whole_characters_and_says_so() {
        assert!(matches!(truncate("short", 5), Cow::Borrowed("short")));
        assert_eq!(truncate("abcdef", 3), "abc...");
        assert_eq!(truncate("\u{e9}\u{e9}\u{e9}", 2), "\u{e9}\u{e9}...");
        assert_eq!(truncate("\u{1F600}x", 1), "\u{1F600}...");
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("a", 0), "...");
    }
}
