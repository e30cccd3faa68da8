//! Wire helpers the group handlers share: string conversions and broker results as error codes.
//! No broker calls and no protocol decisions live here.

use kafka_protocol::protocol::StrBytes;

use crate::broker;
use crate::kafka::error_code;

/// A wire string as an owned Rust string.
pub(crate) fn text(value: &StrBytes) -> String {
    value.as_str().to_owned()
}

/// An optional wire string; an empty string counts as absent (Kafka's "no instance id").
pub(crate) fn optional_text(value: Option<&StrBytes>) -> Option<String> {
    value.map(text).filter(|s| !s.is_empty())
}

pub(crate) fn wire(value: String) -> StrBytes {
    StrBytes::from_string(value)
}

/// The error code of a broker result (NONE on success).
pub(crate) fn code<T>(result: &broker::Result<T>) -> i16 {
    match result {
        Ok(_) => error_code::NONE,
        Err(err) => error_code::code(err),
    }
}
