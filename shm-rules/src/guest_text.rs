//! Text a guest supplies (topic names) and what the host writes of it into
//! its logs: names are bounded and checked before anything is stored, and
//! a log line shows at most a short, escaped prefix of any guest string.
//!
//! ```
//! use shm_rules::guest_text::{check_topic_name, Shown, TopicNameError};
//!
//! assert!(check_topic_name("camera/front").is_ok());
//! assert_eq!(check_topic_name(""), Err(TopicNameError::Empty));
//! let long = "x".repeat(10_000);
//! assert!(matches!(check_topic_name(&long), Err(TopicNameError::TooLong { .. })));
//! assert!(Shown(&long).to_string().len() < 100);
//! ```

use std::fmt;

/// The longest topic name, in bytes.
pub const MAX_TOPIC_NAME: usize = 255;

/// Why a topic name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    /// The name is empty.
    #[error("a topic name must not be empty")]
    Empty,
    /// The name is longer than [`MAX_TOPIC_NAME`].
    #[error("a topic name has at most {MAX_TOPIC_NAME} bytes, this one {len}: shorten it")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a character outside the allowed set.
    #[error("a topic name holds ASCII letters, digits and `_ - . / : @ +` only, not {found:?}: rename the topic")]
    BadCharacter {
        /// The first character refused.
        found: char,
    },
}

/// Checks a topic name: 1 to [`MAX_TOPIC_NAME`] bytes of ASCII letters,
/// digits and `_ - . / : @ +` (names that are also valid Zenoh key
/// expressions without wildcards, and that print safely in logs).
pub fn check_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(TopicNameError::TooLong { len: name.len() });
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-./:@+".contains(*c)))
    {
        Some(found) => Err(TopicNameError::BadCharacter { found }),
        None => Ok(()),
    }
}

/// How many characters of a guest string a log line shows.
pub const SHOWN_CHARS: usize = 48;

/// A guest-supplied string as a log line shows it: at most
/// [`SHOWN_CHARS`] characters, escaped (no control characters or line
/// breaks reach the log), and the full length when it was cut.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.char_indices();
        f.write_str("\"")?;
        for (_, c) in chars.by_ref().take(SHOWN_CHARS) {
            for e in c.escape_debug() {
                fmt::Write::write_char(f, e)?;
            }
        }
        f.write_str("\"")?;
        if chars.next().is_some() {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_plain() {
        assert!(check_topic_name("numbers").is_ok());
        assert!(check_topic_name("demo/numbers:v1@a+b_c-d.e").is_ok());
        assert!(check_topic_name(&"a".repeat(MAX_TOPIC_NAME)).is_ok());
        assert_eq!(
            check_topic_name(&"a".repeat(MAX_TOPIC_NAME + 1)),
            Err(TopicNameError::TooLong {
                len: MAX_TOPIC_NAME + 1
            })
        );
        for bad in ["a b", "a*", "line\nbreak", "é", "a$", "\u{0}"] {
            assert!(
                matches!(
                    check_topic_name(bad),
                    Err(TopicNameError::BadCharacter { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn shown_strings_are_short_and_escaped() {
        assert_eq!(Shown("numbers").to_string(), "\"numbers\"");
        assert_eq!(Shown("a\nb").to_string(), "\"a\\nb\"");
        let long = "y".repeat(1 << 20);
        let shown = Shown(&long).to_string();
        assert!(shown.starts_with(&format!("\"{}\"", "y".repeat(SHOWN_CHARS))));
        assert!(shown.ends_with("... (1048576 bytes)"), "{shown}");
        assert!(shown.len() < SHOWN_CHARS + 30);
    }
}
