//! The OS layer: everything that touches memory the Rust way cannot see
//! (guest linear memories, shared pages, the fault handler, protection
//! keys, `/proc`). Private to the crate: every `unsafe` block of the host
//! lives here, each argued in a `// SAFETY:` comment, and the invariants
//! they rest on are types or `pub(crate) unsafe fn`s with a `# Safety`
//! section. Nothing here is part of the public API: the embedder reaches
//! it only through safe operations of [`crate::ShmCtx`] and
//! [`crate::ShmHost`], which uphold those invariants.

pub(crate) mod guard;
pub(crate) mod memory;
pub(crate) mod pages;
pub(crate) mod pkeys;
pub(crate) mod process;
pub(crate) mod windows;
