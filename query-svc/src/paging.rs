//! Keyset pagination, pure: which way a history page reads, how a fetched page is trimmed, and
//! the opaque conversation-list cursor. Nothing here touches SQL or HTTP.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// How a history request reads the channel's messages (keyset on `message_seq`, never OFFSET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPage {
    /// `after_seq` given: `message_seq > after AND message_seq < before`, ascending; the extra
    /// row means newer messages exist.
    Forward {
        /// Exclusive lower bound.
        after: i64,
        /// Exclusive upper bound (`i64::MAX` when `before_seq` is absent).
        before: i64,
    },
    /// Only `before_seq` given, or neither (the newest page): `message_seq < before`, read
    /// descending and reversed; the extra row means older messages exist.
    Backward {
        /// Exclusive upper bound (`i64::MAX` for the newest page).
        before: i64,
    },
}

/// Clamps a client-given sequence into Postgres' `bigint`.
fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl HistoryPage {
    /// The page meant by the request's `after_seq` / `before_seq`.
    pub fn new(after_seq: Option<u64>, before_seq: Option<u64>) -> Self {
        let before = before_seq.map_or(i64::MAX, seq);
        match after_seq {
            Some(after) => HistoryPage::Forward {
                after: seq(after),
                before,
            },
            None => HistoryPage::Backward { before },
        }
    }

    /// Trims `rows` fetched with `LIMIT limit + 1` (in the query's own order) to at most `limit`
    /// rows in ascending order, and says whether more rows exist in the page's direction.
    pub fn finish<T>(self, mut rows: Vec<T>, limit: usize) -> (Vec<T>, bool) {
        let more = rows.len() > limit;
        rows.truncate(limit);
        if let HistoryPage::Backward { .. } = self {
            rows.reverse();
        }
        (rows, more)
    }
}

/// Position in a user's conversation list (`updated_at DESC, channel_type DESC,
/// channel_key DESC`): the last row of the previous page. On the wire it is opaque: base64url
/// (no padding) of `{"u": updated_at, "t": channel_type, "k": channel_key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationCursor {
    /// `conversations.updated_at`, ms.
    #[serde(rename = "u")]
    pub updated_at: i64,
    /// `conversations.channel_type` (1 or 2).
    #[serde(rename = "t")]
    pub channel_type: i16,
    /// `conversations.channel_key`.
    #[serde(rename = "k")]
    pub channel_key: String,
}

/// base64url that encodes without padding and decodes with or without it.
const CURSOR_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The cursor text is not one this service produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct MalformedCursor;

impl ConversationCursor {
    /// The opaque text form.
    ///
    /// # Panics
    /// Never: a struct of an integer and a string always serializes.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a cursor always serializes");
        CURSOR_B64.encode(json)
    }

    /// Parses the opaque text form.
    ///
    /// # Errors
    /// [`MalformedCursor`] when `text` is not base64url of the cursor JSON, its channel type
    /// is not 1 or 2, or its key is not a channel key of that type (the id rule of
    /// [`events::ChannelKey::from_storage`]: a crafted key, with U+0000 say, never reaches
    /// SQL).
    pub fn decode(text: &str) -> Result<Self, MalformedCursor> {
        let bytes = CURSOR_B64
            .decode(text.trim())
            .map_err(|_| MalformedCursor)?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| MalformedCursor)?;
        let channel_type = u8::try_from(cursor.channel_type)
            .ok()
            .and_then(|t| events::ChannelType::try_from(t).ok())
            .ok_or(MalformedCursor)?;
        events::ChannelKey::from_storage(channel_type, &cursor.channel_key)
            .map_err(|_| MalformedCursor)?;
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_direction() {
        assert_eq!(
            HistoryPage::new(None, None),
            HistoryPage::Backward { before: i64::MAX }
        );
        assert_eq!(
            HistoryPage::new(None, Some(10)),
            HistoryPage::Backward { before: 10 }
        );
        assert_eq!(
            HistoryPage::new(Some(3), None),
            HistoryPage::Forward {
                after: 3,
                before: i64::MAX
            }
        );
        assert_eq!(
            HistoryPage::new(Some(3), Some(9)),
            HistoryPage::Forward {
                after: 3,
                before: 9
            }
        );
        assert_eq!(
            HistoryPage::new(Some(u64::MAX), None),
            HistoryPage::Forward {
                after: i64::MAX,
                before: i64::MAX
            }
        );
    }

    #[test]
    fn forward_keeps_order_and_flags_extra_row() {
        let page = HistoryPage::new(Some(0), None);
        assert_eq!(page.finish(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(page.finish(vec![1, 2], 2), (vec![1, 2], false));
        assert_eq!(page.finish(Vec::<i32>::new(), 2), (vec![], false));
    }

    #[test]
    fn backward_reverses_and_flags_older_rows() {
        let page = HistoryPage::new(None, None);
        // Fetched newest first: 10, 9, 8 with limit 2 → 9, 10 and older rows exist.
        assert_eq!(page.finish(vec![10, 9, 8], 2), (vec![9, 10], true));
        assert_eq!(page.finish(vec![10, 9], 2), (vec![9, 10], false));
    }

    #[test]
    fn cursor_round_trips() {
        let c = ConversationCursor {
            updated_at: 1_700_000_000_123,
            channel_type: 1,
            channel_key: "alice bob/用户7".into(),
        };
        let text = c.encode();
        assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
        assert_eq!(ConversationCursor::decode(&text), Ok(c.clone()));
        // Padded form is accepted too.
        let padded =
            base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&c).unwrap());
        assert_eq!(ConversationCursor::decode(&padded), Ok(c));
    }

    #[test]
    fn cursor_rejects_garbage() {
        assert_eq!(
            ConversationCursor::decode("not base64!"),
            Err(MalformedCursor)
        );
        assert_eq!(ConversationCursor::decode(""), Err(MalformedCursor));
        let wrong_shape = CURSOR_B64.encode(br#"{"u":1}"#);
        assert_eq!(
            ConversationCursor::decode(&wrong_shape),
            Err(MalformedCursor)
        );
        let wrong_type = CURSOR_B64.encode(br#"{"u":1,"t":3,"k":"g"}"#);
        assert_eq!(
            ConversationCursor::decode(&wrong_type),
            Err(MalformedCursor)
        );
        for key in [r#""a\u0000b""#, r#""""#, r#""a b c""#, r#""nospace""#] {
            let crafted = CURSOR_B64.encode(format!(r#"{{"u":1,"t":1,"k":{key}}}"#));
            assert_eq!(
                ConversationCursor::decode(&crafted),
                Err(MalformedCursor),
                "{key}"
            );
        }
        let group = CURSOR_B64.encode(br#"{"u":1,"t":2,"k":"g\u0000"}"#);
        assert_eq!(ConversationCursor::decode(&group), Err(MalformedCursor));
    }
}
