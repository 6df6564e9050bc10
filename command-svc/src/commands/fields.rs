//! Field rules shared by the commands: ids, channel types, uid lists. Each failure names the
//! field it is about.

use super::CommandError;
use events::{ChannelType, IdError};

/// Most uids in one create or add command.
pub const MAX_MEMBERS_PER_REQUEST: usize = 1000;

/// `raw` as an id (uid, group id) by `parse`, or 400 naming `field`.
///
/// # Errors
/// [`CommandError::Invalid`].
pub fn id<T>(
    field: &str,
    raw: String,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<T, CommandError> {
    parse(raw).map_err(|e| CommandError::invalid(field, format!("{field} {e}")))
}

/// `raw` as a channel type (1 personal, 2 group), or 400 naming `field`.
///
/// # Errors
/// [`CommandError::Invalid`].
pub fn channel_type(field: &str, raw: u8) -> Result<ChannelType, CommandError> {
    ChannelType::try_from(raw).map_err(|e| CommandError::invalid(field, e))
}

/// At most [`MAX_MEMBERS_PER_REQUEST`] uids; a bad one is named by index (`uids[2]`).
///
/// # Errors
/// [`CommandError::Invalid`].
pub fn uids(field: &str, raw: Vec<String>) -> Result<Vec<events::Uid>, CommandError> {
    if raw.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(CommandError::invalid(
            field,
            format!("at most {MAX_MEMBERS_PER_REQUEST} uids per request"),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, u)| id(&format!("{field}[{i}]"), u, events::Uid::parse))
        .collect()
}
