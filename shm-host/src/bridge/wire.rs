//! The bridge's sample header: what a Zenoh sample of a bridged topic
//! carries besides its payload (the message's valid bytes).
//!
//! The header is the sample's *attachment*, 24 bytes, little-endian:
//!
//! | bytes | field    | value                                              |
//! |-------|----------|----------------------------------------------------|
//! | 0-3   | magic    | `SHMZ`                                             |
//! | 4     | version  | 1                                                  |
//! | 5     | kind     | 0: a message; 1: the end of the stream (no payload) |
//! | 6-7   | reserved | 0                                                  |
//! | 8-15  | stream   | a random id, one per exporting publisher run       |
//! | 16-23 | sequence | 0, 1, 2, ... per stream                            |
//!
//! Any Zenoh program can publish to an imported key expression: a sample
//! without an attachment, or with one that does not start with the magic,
//! is a plain message (no order check, no end). A sample whose attachment
//! starts with the magic but is not a valid header is malformed.

/// The header's first bytes.
pub const MAGIC: [u8; 4] = *b"SHMZ";
/// The version this host writes and reads.
pub const VERSION: u8 = 1;
/// The header's length in bytes.
pub const HEADER_LEN: usize = 24;

/// What a sample of a bridged stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A message: the payload is its bytes.
    Message,
    /// The publisher ended: the stream closes (the payload is empty).
    End,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message or end.
    pub kind: Kind,
    /// The stream (one exporting publisher's run).
    pub stream: u64,
    /// The sample's number in its stream.
    pub sequence: u64,
}

/// What an attachment says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// No header: a plain Zenoh sample, a message.
    Plain,
    /// A valid header.
    Header(Header),
    /// The magic, but not a valid header.
    Malformed,
}

impl Header {
    /// The attachment bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = match self.kind {
            Kind::Message => 0,
            Kind::End => 1,
        };
        out[8..16].copy_from_slice(&self.stream.to_le_bytes());
        out[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        out
    }

    /// Reads an attachment (`None`: the sample had none).
    pub fn decode(attachment: Option<&[u8]>) -> Decoded {
        let Some(a) = attachment else {
            return Decoded::Plain;
        };
        if a.len() < MAGIC.len() || a[..4] != MAGIC {
            return Decoded::Plain;
        }
        if a.len() != HEADER_LEN || a[4] != VERSION || a[6..8] != [0, 0] {
            return Decoded::Malformed;
        }
        let kind = match a[5] {
            0 => Kind::Message,
            1 => Kind::End,
            _ => return Decoded::Malformed,
        };
        let word = |i: usize| u64::from_le_bytes(a[i..i + 8].try_into().expect("eight bytes"));
        Decoded::Header(Header {
            kind,
            stream: word(8),
            sequence: word(16),
        })
    }
}

/// The key expression on which an exporter asks, after a stream's end,
/// that every importing host confirm it processed the end (a Zenoh query;
/// importers reply once the end is through their buffer), so that the
/// exporting process does not close its session on samples still in
/// flight.
pub fn end_key(stream: u64) -> String {
    format!("{END_PREFIX}/{stream:016x}")
}

/// What importers declare their end-of-stream queryable on.
pub const END_PREFIX: &str = "shm-host/end";

/// The stream of an [`end_key`].
pub fn end_stream(key: &str) -> Option<u64> {
    let hex = key.strip_prefix(END_PREFIX)?.strip_prefix('/')?;
    u64::from_str_radix(hex, 16).ok()
}

/// A stream id: random enough that two runs of a publisher never share
/// one (the standard library's per-process random hash keys, the time and
/// the process id).
pub fn new_stream_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_malformed() {
        let h = Header {
            kind: Kind::End,
            stream: 0x0102_0304_0506_0708,
            sequence: 42,
        };
        let bytes = h.encode();
        assert_eq!(Header::decode(Some(&bytes)), Decoded::Header(h));
        assert_eq!(Header::decode(None), Decoded::Plain);
        assert_eq!(Header::decode(Some(b"other")), Decoded::Plain);
        assert_eq!(Header::decode(Some(b"SHMZ")), Decoded::Malformed);
        let mut bad = bytes;
        bad[4] = 2;
        assert_eq!(Header::decode(Some(&bad)), Decoded::Malformed);
        let mut bad = bytes;
        bad[5] = 7;
        assert_eq!(Header::decode(Some(&bad)), Decoded::Malformed);
        let mut bad = bytes;
        bad[7] = 1;
        assert_eq!(Header::decode(Some(&bad)), Decoded::Malformed);
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(Header::decode(Some(&long)), Decoded::Malformed);
        assert_ne!(new_stream_id(), new_stream_id());
        assert_eq!(end_stream(&end_key(u64::MAX - 1)), Some(u64::MAX - 1));
        assert_eq!(end_stream("shm-host/end/xyz"), None);
        assert_eq!(end_stream("other/0"), None);
    }
}
