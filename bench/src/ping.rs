//! The Zenoh benchmark's messages (`benches/zenoh.rs`, `zenoh-pong`, and
//! the `pubsub-relay` guest, which computes the same checksum).
//!
//! A ping of `size` bytes: its sequence number (u64, little-endian), then
//! `size - 8` bytes of the pattern byte `seq % 251`, written afresh for
//! each message. Its acknowledgement (an ack), 16 bytes: the ping's first 8
//! bytes and the checksum of the whole ping: the wrapping sum of its
//! little-endian u64 words, the last one zero-padded (so that reading it
//! reads every byte).

/// An acknowledgement's size.
pub const ACK_LEN: usize = 16;

/// The pattern byte of ping `seq`.
pub fn pattern(seq: u64) -> u8 {
    (seq % 251) as u8
}

/// Writes ping `seq` of `size` bytes (at least 8) into `buf`, replacing
/// what it held.
pub fn fill(buf: &mut Vec<u8>, seq: u64, size: usize) {
    assert!(size >= 8, "a ping holds at least its sequence number");
    buf.clear();
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.resize(size, pattern(seq));
}

/// The checksum of ping `seq` of `size` bytes, computed without reading
/// it (to check acknowledgements cheaply).
pub fn expected(seq: u64, size: usize) -> u64 {
    let b = u64::from(pattern(seq));
    let word = b.wrapping_mul(0x0101_0101_0101_0101);
    let words = (size / 8) as u64;
    let tail = (0..size % 8).fold(0u64, |t, i| t | (b << (8 * i)));
    seq.wrapping_add(word.wrapping_mul(words - 1))
        .wrapping_add(tail)
}

/// The checksum over a message given in pieces (a Zenoh payload's slices).
#[derive(Default)]
pub struct Checksum {
    sum: u64,
    pending: [u8; 8],
    held: usize,
}

impl Checksum {
    /// Adds the next piece.
    pub fn update(&mut self, mut bytes: &[u8]) {
        if self.held > 0 {
            let n = (8 - self.held).min(bytes.len());
            self.pending[self.held..self.held + n].copy_from_slice(&bytes[..n]);
            self.held += n;
            bytes = &bytes[n..];
            if self.held < 8 {
                return;
            }
            self.sum = self.sum.wrapping_add(u64::from_le_bytes(self.pending));
            self.held = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.sum = self
                .sum
                .wrapping_add(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.held = rest.len();
    }

    /// The checksum of all pieces.
    pub fn finish(self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.held].copy_from_slice(&self.pending[..self.held]);
        self.sum.wrapping_add(u64::from_le_bytes(last))
    }
}

/// The checksum of `bytes` in one piece.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut c = Checksum::default();
    c.update(bytes);
    c.finish()
}

/// An acknowledgement: the first 8 bytes of `message` and `sum`.
pub fn ack(message_start: &[u8], sum: u64) -> [u8; ACK_LEN] {
    let mut out = [0u8; ACK_LEN];
    let n = message_start.len().min(8);
    out[..n].copy_from_slice(&message_start[..n]);
    out[8..].copy_from_slice(&sum.to_le_bytes());
    out
}

/// An acknowledgement's (sequence number, checksum), if it is one.
pub fn parse_ack(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != ACK_LEN {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
    Some((word(0), word(8)))
}
