//! Running components as the `shm-host` runner does: each in a store of its
//! own, linked through the host ([`link`]), a command component
//! ([`command`]), a publish/subscribe topology of them ([`topology`]).

pub mod command;
pub mod link;
pub mod topology;
