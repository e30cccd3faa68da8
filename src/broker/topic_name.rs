//! Topic name rules, as Kafka enforces them: legal characters, length, reserved names.

use super::error::{Error, Result};
use crate::limits::TOPIC_NAME_LEN_MAX;

/// Checks `name` against Kafka's topic naming rules.
pub(crate) fn validate(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("cannot be \".\" or \"..\"")
    } else if name.len() > TOPIC_NAME_LEN_MAX {
        Some("is longer than 249 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        Some("contains characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidTopicName {
            topic: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Whether Kafka treats the topic as internal (hidden from listings unless asked for).
pub(crate) fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, ok: bool) {
        assert_eq!(validate(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        check("orders", true);
        check("a.b_c-D9", true);
        check("", false);
        check(".", false);
        check("..", false);
        check("bad name", false);
        check("caf\u{e9}", false);
        check(&"x".repeat(249), true);
        check(&"x".repeat(250), false);
    }
}
