//! Parameter types of the OpenAPI operations whose rule lives in `events`: documented with the
//! rule's constraints and checked with the rule's own code (poem-openapi's `pattern` validator
//! compiles its regex on every request, which cost a third of a history read).

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromParameter, ParseResult, ToJSON, Type};
use std::borrow::Cow;

/// The id rule as a JSON Schema pattern (ECMA-262): no whitespace, no C0, DEL or C1 controls.
pub const ID_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f]+$";

/// A `uid` or `channel_id` in a path or query: 1–128 bytes of UTF-8 without whitespace or
/// control characters ([`events::ids::validate_id`]). A value that breaks the rule is 400
/// `VALIDATION_ERROR` naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(pub String);

impl Id {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for Id {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string(id)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: Some(1),
            max_length: Some(events::ids::MAX_ID_BYTES),
            pattern: Some(ID_PATTERN.to_owned()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for Id {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        events::ids::validate_id(value).map_err(ParseError::custom)?;
        Ok(Self(value.to_owned()))
    }
}

impl ToJSON for Id {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_events_rule() {
        assert!(Id::parse_from_parameter("用户7").is_ok());
        assert!(Id::parse_from_parameter("a b").is_err());
        assert!(Id::parse_from_parameter("").is_err());
        assert!(Id::parse_from_parameter(&"x".repeat(129)).is_err());
    }
}
