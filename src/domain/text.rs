//! What counts as visible text: a name must show something on a screen.

/// Whether `c` shows nothing by itself: white space, control characters, format characters
/// (Unicode category Cf: zero-width spaces and joiners, bidirectional marks and overrides, the
/// byte order mark, tag characters) and the other default-ignorable code points (variation
/// selectors, fillers). Such characters may sit inside a name, next to visible ones (a joiner in
/// an emoji, a mark in Arabic), but cannot be a name on their own.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace() || c.is_control() || is_format_or_ignorable(c)
}

/// Whether `text` has at least one character that is not [`is_invisible`].
pub fn has_visible(text: &str) -> bool {
    text.chars().any(|c| !is_invisible(c))
}

/// Unicode 15.1: General_Category=Cf and Default_Ignorable_Code_Point, plus U+2800 BRAILLE
/// PATTERN BLANK, which renders as nothing and is the usual way around rules like this one.
fn is_format_or_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_only_text_has_nothing_visible() {
        for text in [
            "",
            " \t\n",
            "\u{200B}\u{202E}",
            "\u{FEFF}\u{2060}\u{00AD}",
            "\u{3164}\u{115F}",
            "\u{E0041}\u{E007F}",
            "\u{FE0F}\u{200D}",
            "\u{0}\u{7F}\u{85}",
            "\u{2800}\u{3000}",
        ] {
            assert!(!has_visible(text), "{text:?}");
        }
    }

    #[test]
    fn visible_text_may_hold_invisible_characters() {
        for text in ["a", "\u{200B}a\u{202E}", "👨\u{200D}👩", "ع\u{200F}", "·", "_"] {
            assert!(has_visible(text), "{text:?}");
        }
    }
}
