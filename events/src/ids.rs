//! Validated identifiers.
//!
//! Rule (from the Parley API contract): a `uid` or `channel_id` is 1–128 bytes of printable
//! UTF-8 without whitespace. Tenants follow the same rule.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest id in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// Why an id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is the empty string.
    #[error("must not be empty")]
    Empty,
    /// The id is longer than [`MAX_ID_BYTES`].
    #[error("must be at most {MAX_ID_BYTES} bytes")]
    TooLong,
    /// The id holds whitespace or a control character.
    #[error("must be printable and contain no whitespace")]
    NotPrintable,
}

/// Checks the id rule shared by [`Uid`], [`ChannelId`] and [`TenantId`].
///
/// # Errors
/// [`IdError`] naming the broken part of the rule.
pub fn validate_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(IdError::NotPrintable);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            ///
            /// # Errors
            /// [`IdError`] when `s` breaks the id rule.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate_id(&s)?;
                Ok(Self(s))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A user id, 1–128 bytes of printable UTF-8 without whitespace.
    Uid
);
id_type!(
    /// A channel id as the API names it: a group's id, or for a personal channel the peer's uid.
    ChannelId
);
id_type!(
    /// A tenant id; every event, row and subject carries one.
    TenantId
);

/// The kind of a channel; the numbers are the API's (`channel_type`), after WuKongIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ChannelType {
    /// 1: a one-to-one channel between two users.
    Personal,
    /// 2: a group channel, created explicitly, with members.
    Group,
}

impl ChannelType {
    /// The wire number: 1 personal, 2 group.
    pub fn as_u8(self) -> u8 {
        match self {
            ChannelType::Personal => 1,
            ChannelType::Group => 2,
        }
    }
}

impl TryFrom<u8> for ChannelType {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            1 => Ok(ChannelType::Personal),
            2 => Ok(ChannelType::Group),
            other => Err(format!("unknown channel_type {other}; expected 1 or 2")),
        }
    }
}

impl From<ChannelType> for u8 {
    fn from(t: ChannelType) -> u8 {
        t.as_u8()
    }
}

/// The internal identity of a channel.
///
/// A personal channel is one channel per **unordered** pair of users: `Personal { low, high }`
/// with `low <= high` byte-wise, whichever of the two sends. A group is its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelKey {
    /// One-to-one channel between two users, stored in canonical (sorted) order.
    Personal {
        /// The byte-wise smaller uid.
        low: Uid,
        /// The byte-wise larger uid.
        high: Uid,
    },
    /// A group channel.
    Group {
        /// The group's id.
        id: ChannelId,
    },
}

/// Separator of the two uids in [`ChannelKey::storage_key`]; ids never contain whitespace.
pub const PAIR_SEPARATOR: char = ' ';

impl ChannelKey {
    /// The personal channel between `a` and `b`, in either order.
    pub fn personal(a: &Uid, b: &Uid) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        ChannelKey::Personal {
            low: low.clone(),
            high: high.clone(),
        }
    }

    /// The channel a viewer means by `(channel_type, channel_id)`: for a personal channel
    /// `channel_id` is the peer's uid.
    pub fn for_viewer(viewer: &Uid, channel_type: ChannelType, channel_id: &ChannelId) -> Self {
        match channel_type {
            ChannelType::Personal => {
                ChannelKey::personal(viewer, &Uid(channel_id.as_str().to_owned()))
            }
            ChannelType::Group => ChannelKey::Group {
                id: channel_id.clone(),
            },
        }
    }

    /// The channel's type.
    pub fn channel_type(&self) -> ChannelType {
        match self {
            ChannelKey::Personal { .. } => ChannelType::Personal,
            ChannelKey::Group { .. } => ChannelType::Group,
        }
    }

    /// The text key used in read-model rows: a group's id, or `"<low> <high>"` for a pair
    /// (the separator is [`PAIR_SEPARATOR`], which no id contains).
    pub fn storage_key(&self) -> String {
        match self {
            ChannelKey::Personal { low, high } => format!("{low}{PAIR_SEPARATOR}{high}"),
            ChannelKey::Group { id } => id.as_str().to_owned(),
        }
    }

    /// Inverse of [`ChannelKey::storage_key`].
    ///
    /// # Errors
    /// [`IdError`] when the text is not a valid key of that type.
    pub fn from_storage(channel_type: ChannelType, key: &str) -> Result<Self, IdError> {
        match channel_type {
            ChannelType::Group => Ok(ChannelKey::Group {
                id: ChannelId::parse(key)?,
            }),
            ChannelType::Personal => {
                let (a, b) = key
                    .split_once(PAIR_SEPARATOR)
                    .ok_or(IdError::NotPrintable)?;
                Ok(ChannelKey::personal(&Uid::parse(a)?, &Uid::parse(b)?))
            }
        }
    }

    /// The `channel_id` that `viewer` sees: the peer's uid for a personal channel, the group id
    /// otherwise.
    pub fn channel_id_for(&self, viewer: &str) -> String {
        match self {
            ChannelKey::Personal { low, high } => {
                if low.as_str() == viewer {
                    high.to_string()
                } else {
                    low.to_string()
                }
            }
            ChannelKey::Group { id } => id.to_string(),
        }
    }

    /// Whether `uid` is one of the two users of a personal channel (always false for groups,
    /// whose membership lives in their events).
    pub fn is_pair_member(&self, uid: &str) -> bool {
        matches!(self, ChannelKey::Personal { low, high } if low.as_str() == uid || high.as_str() == uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rule() {
        assert!(Uid::parse("a.b").is_ok());
        assert!(Uid::parse("x*").is_ok());
        assert!(Uid::parse(">").is_ok());
        assert!(Uid::parse("用户7").is_ok());
        assert_eq!(Uid::parse(""), Err(IdError::Empty));
        assert_eq!(Uid::parse("a b"), Err(IdError::NotPrintable));
        assert_eq!(Uid::parse("a\u{7}"), Err(IdError::NotPrintable));
        assert_eq!(Uid::parse("x".repeat(129)), Err(IdError::TooLong));
        assert!(Uid::parse("x".repeat(128)).is_ok());
        // 43 three-byte characters = 129 bytes
        assert_eq!(Uid::parse("用".repeat(43)), Err(IdError::TooLong));
    }

    #[test]
    fn personal_key_is_unordered() {
        let a = Uid::parse("alice").unwrap();
        let b = Uid::parse("bob").unwrap();
        assert_eq!(ChannelKey::personal(&a, &b), ChannelKey::personal(&b, &a));
        let k = ChannelKey::personal(&b, &a);
        assert_eq!(k.storage_key(), "alice bob");
        assert_eq!(
            ChannelKey::from_storage(ChannelType::Personal, "alice bob").unwrap(),
            k
        );
        assert_eq!(k.channel_id_for("alice"), "bob");
        assert_eq!(k.channel_id_for("bob"), "alice");
    }

    #[test]
    fn channel_type_numbers() {
        assert_eq!(ChannelType::try_from(1).unwrap(), ChannelType::Personal);
        assert_eq!(ChannelType::try_from(2).unwrap(), ChannelType::Group);
        assert!(ChannelType::try_from(3).is_err());
    }
}
