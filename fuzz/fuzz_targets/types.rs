//! Value types shared by the fuzz targets.

use arbitrary::Arbitrary;

#[derive(flat_layout_derive::Flat, Arbitrary, Debug, Clone)]
pub struct Kid {
    pub label: Option<String>,
    pub value: i64,
    pub c: char,
}

#[derive(flat_layout_derive::Flat, Arbitrary, Debug, Clone)]
pub enum Event {
    Empty,
    Text(String),
    Pair(u8, Option<bool>),
    Batch { ids: Vec<u16>, kids: Vec<Kid> },
}

#[derive(flat_layout_derive::Flat, Arbitrary, Debug, Clone)]
pub struct Rec {
    pub id: u32,
    pub name: String,
    pub tags: Vec<String>,
    pub groups: Vec<Vec<String>>,
    pub note: Option<String>,
    pub kids: Vec<Kid>,
    pub events: Vec<Event>,
    pub flag: bool,
}

/// A `fmt::Write` that only counts, so reading a view allocates nothing.
#[allow(dead_code)] // used by flat_validate only
pub struct Sink(pub usize);

impl core::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}
