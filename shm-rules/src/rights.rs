//! The rights model, as one table.
//!
//! Every handle holds the read right; a *writable* handle also holds the
//! write right. [`RULES`] says, for every operation whose outcome depends on
//! a handle's rights, which right the handle it acts through must hold and
//! what rights the handle it yields gets:
//!
//! | [`Operation`] | ledger call | requires | yields |
//! |---|---|---|---|
//! | `AttachWrite` | `attach(Write)` | write | the handle, unchanged |
//! | `AttachReadExclusive` | `attach(ReadExclusive)` | write | the handle, unchanged |
//! | `AttachReadShared` | `attach(ReadShared)` | read | the handle, unchanged |
//! | `AttachPool` | `attach(Pool)` | read | the handle, unchanged |
//! | `ReadInPool` | `attach_in_pool` | read | the handle, unchanged |
//! | `WriteInPool` | `write_in_pool` | write | the handle, unchanged |
//! | `HostWrite` | `host_write`, `host_commit` | write | the handle, unchanged |
//! | `PartitionWritable` | `partition(.., true)` | write | a writable handle |
//! | `PartitionReadOnly` | `partition(.., false)` | read | a read-only handle |
//! | `Clone` | `clone_handle` | read | a read-only handle |
//! | `Alias` | `alias` | read | the source's rights |
//! | `Lend` | `lend` | read | the source's rights |
//!
//! An exclusive read needs the write right because it shuts every other
//! reader out and its `detach` consumes bytes for every handle of the
//! content: a read-only handle can never change a block's contents, its
//! valid bytes or its consumed offset. What a `detach` commits or consumes
//! follows from the access its attachment was granted here, so `detach`,
//! `drop_handle`, `transfer` (the handle moves with its rights) and
//! `abort_attach` need no right beyond holding the handle.
//!
//! Rights only ever attenuate: no operation yields a handle more writable
//! than the one it acts through (`derived(op, false, _)` is `false` for
//! every `op`), and a partition that asks for more than its source holds is
//! refused rather than silently narrowed.
//!
//! The ledger asks [`check`] before each of these operations and
//! [`derived`] for the rights of each handle it derives, so every
//! `ReadOnly` refusal ([`AttachError::ReadOnly`],
//! [`PartitionError::ReadOnly`], [`HostWriteError::ReadOnly`]) comes from
//! [`check`], converted from [`WriteRightNeeded`]. A model of the ledger
//! (the fuzzer's) asks the same table for its expectations.
//!
//! [`AttachError::ReadOnly`]: crate::AttachError::ReadOnly
//! [`PartitionError::ReadOnly`]: crate::PartitionError::ReadOnly
//! [`HostWriteError::ReadOnly`]: crate::HostWriteError::ReadOnly

use crate::Access;

/// A right a handle holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Right {
    /// Held by every handle: seeing the valid bytes, alongside other
    /// readers.
    Read,
    /// Held by writable handles only: changing a block's contents, its
    /// valid bytes or its consumed offset, or shutting other readers out.
    Write,
}

/// An operation whose outcome depends on the rights of the handle it acts
/// through (see the [module](self) for the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Ledger::attach`](crate::Ledger::attach) with [`Access::Write`].
    AttachWrite,
    /// [`Ledger::attach`](crate::Ledger::attach) with
    /// [`Access::ReadExclusive`]: it shuts other readers out and its detach
    /// consumes for every handle of the content.
    AttachReadExclusive,
    /// [`Ledger::attach`](crate::Ledger::attach) with
    /// [`Access::ReadShared`].
    AttachReadShared,
    /// [`Ledger::attach`](crate::Ledger::attach) with [`Access::Pool`].
    AttachPool,
    /// [`Ledger::attach_in_pool`](crate::Ledger::attach_in_pool): a shared
    /// read inside a pool mapping.
    ReadInPool,
    /// [`Ledger::write_in_pool`](crate::Ledger::write_in_pool): a write
    /// window inside a pool mapping.
    WriteInPool,
    /// [`Ledger::host_write`](crate::Ledger::host_write) and
    /// [`Ledger::host_commit`](crate::Ledger::host_commit): the host writes
    /// for the guest holding the handle.
    HostWrite,
    /// [`Ledger::partition`](crate::Ledger::partition) asking for a
    /// writable partition.
    PartitionWritable,
    /// [`Ledger::partition`](crate::Ledger::partition) asking for a
    /// read-only partition.
    PartitionReadOnly,
    /// [`Ledger::clone_handle`](crate::Ledger::clone_handle).
    Clone,
    /// [`Ledger::alias`](crate::Ledger::alias).
    Alias,
    /// [`Ledger::lend`](crate::Ledger::lend).
    Lend,
    /// Publishing a pool block ([`Pool::check_publish`](crate::pubsub::Pool::check_publish)):
    /// the publisher gives up its write right, every subscriber gets a
    /// read-only clone.
    Publish,
}

impl Operation {
    /// Every operation, in the table's order.
    pub const ALL: [Operation; 13] = [
        Operation::AttachWrite,
        Operation::AttachReadExclusive,
        Operation::AttachReadShared,
        Operation::AttachPool,
        Operation::ReadInPool,
        Operation::WriteInPool,
        Operation::HostWrite,
        Operation::PartitionWritable,
        Operation::PartitionReadOnly,
        Operation::Clone,
        Operation::Alias,
        Operation::Lend,
        Operation::Publish,
    ];

    /// [`Ledger::attach`](crate::Ledger::attach) with `access`.
    pub const fn attach(access: Access) -> Operation {
        match access {
            Access::Write => Operation::AttachWrite,
            Access::ReadExclusive => Operation::AttachReadExclusive,
            Access::ReadShared => Operation::AttachReadShared,
            Access::Pool => Operation::AttachPool,
        }
    }

    /// An attachment inside a pool mapping with `access`:
    /// [`Ledger::write_in_pool`](crate::Ledger::write_in_pool) for
    /// [`Access::Write`], else
    /// [`Ledger::attach_in_pool`](crate::Ledger::attach_in_pool).
    pub const fn in_pool(access: Access) -> Operation {
        match access {
            Access::Write => Operation::WriteInPool,
            _ => Operation::ReadInPool,
        }
    }

    /// [`Ledger::partition`](crate::Ledger::partition) asking for
    /// `writable`.
    pub const fn partition(writable: bool) -> Operation {
        if writable {
            Operation::PartitionWritable
        } else {
            Operation::PartitionReadOnly
        }
    }
}

/// The rights of the handle an operation yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Yields {
    /// No new handle: the handle acted through keeps its rights.
    Unchanged,
    /// A new handle with the rights of the one it came from.
    SourceRights,
    /// A new read-only handle.
    ReadOnly,
    /// A new handle with the rights the caller asked for, which
    /// [`Rule::requires`] bounds by the source's.
    Asked,
}

/// One row of the rights table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The operation.
    pub op: Operation,
    /// The right the handle it acts through must hold.
    pub requires: Right,
    /// The rights of the handle it yields.
    pub yields: Yields,
}

const fn row(op: Operation, requires: Right, yields: Yields) -> Rule {
    Rule {
        op,
        requires,
        yields,
    }
}

/// The rights model: one row per [`Operation`], in the order of
/// [`Operation::ALL`].
pub const RULES: [Rule; 13] = {
    use Operation as O;
    use Right::{Read, Write};
    use Yields::{Asked, ReadOnly, SourceRights, Unchanged};
    [
        row(O::AttachWrite, Write, Unchanged),
        row(O::AttachReadExclusive, Write, Unchanged),
        row(O::AttachReadShared, Read, Unchanged),
        row(O::AttachPool, Read, Unchanged),
        row(O::ReadInPool, Read, Unchanged),
        row(O::WriteInPool, Write, Unchanged),
        row(O::HostWrite, Write, Unchanged),
        row(O::PartitionWritable, Write, Asked),
        row(O::PartitionReadOnly, Read, Asked),
        row(O::Clone, Read, ReadOnly),
        row(O::Alias, Read, SourceRights),
        row(O::Lend, Read, SourceRights),
        row(O::Publish, Write, ReadOnly),
    ]
};

// The table is in the order of the enum, so that `rule` is an index.
const _: () = {
    let mut i = 0;
    while i < RULES.len() {
        assert!(RULES[i].op as usize == i && Operation::ALL[i] as usize == i);
        i += 1;
    }
};

/// The row of `op`.
pub const fn rule(op: Operation) -> Rule {
    RULES[op as usize]
}

/// The right `op` requires is one a handle that is `writable` (or not)
/// does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op:?} needs the write right, and the handle is read-only")]
pub struct WriteRightNeeded {
    /// The operation refused.
    pub op: Operation,
}

/// May `op` act through a handle that is `writable` (or read-only)?
pub const fn check(op: Operation, writable: bool) -> Result<(), WriteRightNeeded> {
    match rule(op).requires {
        Right::Read => Ok(()),
        Right::Write if writable => Ok(()),
        Right::Write => Err(WriteRightNeeded { op }),
    }
}

/// Is the handle `op` yields writable, when the handle it acts through is
/// `source_writable` and the caller asked for `asked` (a partition's
/// `writable`; ignored by operations whose rights are fixed)? Never more
/// than `source_writable`.
pub const fn derived(op: Operation, source_writable: bool, asked: bool) -> bool {
    source_writable
        && match rule(op).yields {
            Yields::Unchanged | Yields::SourceRights => true,
            Yields::ReadOnly => false,
            Yields::Asked => asked,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_only_attenuate() {
        for op in Operation::ALL {
            assert_eq!(rule(op).op, op);
            for asked in [false, true] {
                assert!(!derived(op, false, asked), "{op:?} escalates");
            }
        }
    }

    #[test]
    fn a_read_only_handle_is_refused_exactly_what_needs_writing() {
        for op in Operation::ALL {
            assert_eq!(check(op, true), Ok(()));
            let needs_write = rule(op).requires == Right::Write;
            assert_eq!(check(op, false).is_err(), needs_write, "{op:?}");
        }
        let writers = [Access::Write, Access::ReadExclusive];
        for access in [
            Access::Write,
            Access::ReadExclusive,
            Access::ReadShared,
            Access::Pool,
        ] {
            let write = writers.contains(&access);
            assert_eq!(check(Operation::attach(access), false).is_err(), write);
        }
    }

    #[test]
    fn a_partition_gets_what_it_asked_within_its_source() {
        for asked in [false, true] {
            let op = Operation::partition(asked);
            assert_eq!(derived(op, true, asked), asked);
            assert_eq!(check(op, false).is_ok(), !asked);
        }
        assert!(!derived(Operation::Clone, true, true));
        assert!(derived(Operation::Alias, true, false));
        assert!(derived(Operation::Lend, true, false));
    }
}
