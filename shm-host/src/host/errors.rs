//! The host's own failures, and what each becomes in the `exchange`
//! interface's error ([`ExchangeError`], defined once in `shm-rules`; the
//! rules' refusals convert there).

use crate::os::memory::MapError;
use crate::rules::ExchangeError;

/// The largest block a guest may create: its linear memory is 4 GiB.
pub(crate) const MAX_BLOCK: u32 = u32::MAX - (1 << 16);

/// A block larger than [`MAX_BLOCK`] was asked for.
#[derive(Debug, thiserror::Error)]
#[error("a block may hold at most {MAX_BLOCK} bytes")]
pub(crate) struct TooLarge;

impl From<TooLarge> for ExchangeError {
    fn from(_: TooLarge) -> Self {
        ExchangeError::WrongSize
    }
}

/// Storage or a local block outside any memory this host created.
#[derive(Debug, thiserror::Error)]
#[error("the region is not in a linear memory created by this host")]
pub(crate) struct ForeignMemory;

impl From<ForeignMemory> for ExchangeError {
    fn from(_: ForeignMemory) -> Self {
        ExchangeError::ForeignMemory
    }
}

/// A placement the ledger allowed could not be carried out.
#[derive(Debug, thiserror::Error)]
#[error("the host could not map the block: {0}")]
pub(crate) struct PlaceFailed(pub(crate) MapError);

impl From<PlaceFailed> for ExchangeError {
    fn from(_: PlaceFailed) -> Self {
        ExchangeError::Internal
    }
}
