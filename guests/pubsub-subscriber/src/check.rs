//! The subscriber's check of each message, shared with the stream
//! subscriber component.

use shm_guest::Block;

/// Checks each message: numbers in order, every byte the pattern.
pub struct Checker {
    pub name: String,
    pub received: u32,
    pub last: Option<u32>,
    pub bytes_read: u64,
}

impl Checker {
    pub fn message(&mut self, message: &Block) -> Result<(), String> {
        let bytes = message
            .attach_read()
            .map_err(|e| format!("attaching: {e}"))?;
        self.bytes(&bytes)
    }

    /// Checks a message's bytes, wherever they are.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() < 4 {
            return Err(format!("a message of {} bytes", bytes.len()));
        }
        let n = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"));
        if let Some(prev) = self.last {
            if n <= prev {
                return Err(format!("message {n} after {prev}: out of order"));
            }
        }
        let pattern = (n % 251) as u8;
        if let Some(i) = bytes[4..].iter().position(|&b| b != pattern) {
            return Err(format!("message {n}: byte {} is not {pattern}", i + 4));
        }
        self.bytes_read += bytes.len() as u64;
        if bytes.len() <= 4096 {
            println!("{}: received {n}", self.name);
        }
        self.last = Some(n);
        self.received += 1;
        Ok(())
    }
}
