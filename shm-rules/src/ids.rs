//! The identifiers of what the ledger records. Each is a plain number,
//! never reused by one ledger.

/// Identifies a guest (one store, one linear memory in the normal case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestId(pub u64);

/// Identifies a handle to a block. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId(pub u64);

/// Identifies a backing (the bytes of a block). Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackingId(pub u64);

/// Identifies a linear memory, as the mapping layer numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryId(pub u64);

/// Identifies a content (a byte range of a backing with its own valid
/// length). Internal to the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ContentId(pub(crate) u64);

/// Identifies a loan (a borrowed handle lent to another guest for a call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoanId(pub u64);
