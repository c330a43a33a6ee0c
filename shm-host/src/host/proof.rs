//! Proof of aliasing: which mapping backs a host address, read from
//! `/proc/self/maps`.
//!
//! A guest page attached without copying is a mapping of the block's memfd:
//! its line in `/proc/self/maps` names the memfd's inode and the page's
//! offset in the file. A copy would show the anonymous pages of the guest's
//! heap instead.

/// One line of `/proc/self/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    /// First address of the mapping.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// Permissions, e.g. `r--s` for a shared read-only mapping.
    pub perms: String,
    /// Offset in the mapped file.
    pub offset: u64,
    /// Inode of the mapped file (0 for anonymous memory).
    pub inode: u64,
    /// The path column, e.g. `/memfd:zero-copy-shm-block (deleted)`.
    pub path: String,
}

impl MapsEntry {
    /// Parses one line of `/proc/self/maps`.
    pub fn parse(line: &str) -> Option<MapsEntry> {
        let mut cols = line.split_whitespace();
        let (start, end) = cols.next()?.split_once('-')?;
        let perms = cols.next()?.to_string();
        let offset = u64::from_str_radix(cols.next()?, 16).ok()?;
        let _device = cols.next()?;
        let inode = cols.next()?.parse().ok()?;
        let path = cols.collect::<Vec<_>>().join(" ");
        Some(MapsEntry {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            perms,
            offset,
            inode,
            path,
        })
    }

    /// Is this a shared mapping (the `s` in `rw-s`)?
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    /// Is it writable?
    pub fn is_writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
}

/// The mapping holding host address `addr`, if any.
pub fn mapping_at(addr: usize) -> Option<MapsEntry> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(MapsEntry::parse)
        .find(|e| e.start <= addr && addr < e.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_memfd_line() {
        let e = MapsEntry::parse(
            "7f0000001000-7f0000003000 r--s 00002000 00:01 4242                       /memfd:zero-copy-shm-block (deleted)",
        )
        .unwrap();
        assert_eq!(
            (e.start, e.end, e.offset, e.inode),
            (0x7f0000001000, 0x7f0000003000, 0x2000, 4242)
        );
        assert!(e.is_shared() && !e.is_writable());
        assert_eq!(e.path, "/memfd:zero-copy-shm-block (deleted)");
    }

    #[test]
    fn finds_a_mapping_of_this_process() {
        let x = Box::new(7u8);
        let e = mapping_at(&*x as *const u8 as usize).expect("the heap is mapped");
        assert!(e.start <= &*x as *const u8 as usize);
        assert!(e.is_writable());
    }
}
