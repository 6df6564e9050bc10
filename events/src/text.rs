//! Rules for free-text fields (group names today; every later free-text field takes a
//! [`TextRule`] here), defined once for the command edge and the projections.
//!
//! The rule behind them: **whatever the command side accepts, every projection must be able
//! to store**. The command service checks each free-text field with its rule and answers 400
//! naming the field; ids have their own rule ([`crate::ids::validate_id`]), which
//! `client_msg_no` follows too. A rule allows valid UTF-8 (every Rust `str` is) up to a byte
//! cap and refuses control characters — C0 (U+0000–U+001F, U+0000 included), DEL and C1
//! (U+0080–U+009F) — unless the field documents line breaks (`\n`, `\r`, `\t`).
//!
//! Events already in a log may predate a rule (the first releases accepted a group name with
//! U+0000, which PostgreSQL `text` cannot hold). Projections therefore pass every free-text
//! value through [`storable`] before writing it, so such an event is applied, never parked.

use std::borrow::Cow;

/// The rule of one free-text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    /// Shortest value in bytes (0 allows the empty string).
    pub min_bytes: usize,
    /// Longest value in bytes (UTF-8).
    pub max_bytes: usize,
    /// Whether `\n`, `\r` and `\t` are allowed (every other control character never is).
    pub line_breaks: bool,
}

/// A group's display name: 1–256 bytes, no control characters.
pub const GROUP_NAME: TextRule = TextRule {
    min_bytes: 1,
    max_bytes: 256,
    line_breaks: false,
};

/// A tenant's display name (admin API): 1–256 bytes, no control characters.
pub const TENANT_NAME: TextRule = GROUP_NAME;

/// An API key's label (admin API): 1–200 bytes, no control characters.
pub const KEY_LABEL: TextRule = TextRule {
    min_bytes: 1,
    max_bytes: 200,
    line_breaks: false,
};

/// Why a value broke its [`TextRule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Shorter than the rule's minimum.
    #[error("must be at least {min} bytes")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// Longer than the rule's maximum.
    #[error("must be at most {max} bytes")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// Holds a control character.
    #[error("must not contain control characters (U+{code:04X} at byte {at})")]
    Control {
        /// The character's code point.
        code: u32,
        /// Its byte offset.
        at: usize,
    },
}

impl TextRule {
    /// Checks `s` against the rule.
    ///
    /// # Errors
    /// [`TextError`] naming the first broken part (length first, then the first control
    /// character).
    pub fn check(&self, s: &str) -> Result<(), TextError> {
        if s.len() < self.min_bytes {
            return Err(TextError::TooShort {
                min: self.min_bytes,
            });
        }
        if s.len() > self.max_bytes {
            return Err(TextError::TooLong {
                max: self.max_bytes,
            });
        }
        let allowed = |c: char| self.line_breaks && matches!(c, '\n' | '\r' | '\t');
        match s
            .char_indices()
            .find(|&(_, c)| c.is_control() && !allowed(c))
        {
            Some((at, c)) => Err(TextError::Control {
                code: u32::from(c),
                at,
            }),
            None => Ok(()),
        }
    }
}

/// The replacement [`storable`] writes for U+0000: U+FFFD REPLACEMENT CHARACTER.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `s` as a PostgreSQL `text` column can hold it: U+0000 (which `text` refuses, SQLSTATE
/// 22021) replaced by [`NUL_REPLACEMENT`]; everything else unchanged (borrowed when there is
/// no U+0000). Projections write every free-text value of an event through this.
pub fn storable(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_name_rule() {
        assert_eq!(GROUP_NAME.check("Team 用户 🎉"), Ok(()));
        assert_eq!(GROUP_NAME.check(""), Err(TextError::TooShort { min: 1 }));
        assert_eq!(
            GROUP_NAME.check(&"x".repeat(257)),
            Err(TextError::TooLong { max: 256 })
        );
        assert_eq!(GROUP_NAME.check(&"x".repeat(256)), Ok(()));
        assert_eq!(
            GROUP_NAME.check("a\u{0}b"),
            Err(TextError::Control { code: 0, at: 1 })
        );
        for c in ['\n', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
            assert!(GROUP_NAME.check(&format!("a{c}")).is_err(), "{c:?}");
        }
        let multiline = TextRule {
            line_breaks: true,
            ..GROUP_NAME
        };
        assert_eq!(multiline.check("a\nb\tc\r\n"), Ok(()));
        assert!(multiline.check("a\u{0}").is_err());
    }

    #[test]
    fn storable_replaces_only_nul() {
        assert!(matches!(storable("plain"), Cow::Borrowed("plain")));
        assert_eq!(storable("a\u{0}b\u{0}"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(storable("tab\tstays"), "tab\tstays");
    }
}
