//! Isolation the guests cannot negotiate: topic grants (who may publish or
//! subscribe to what) and each guest's watchdog (CPU budget, eviction).

mod grants;
mod watchdog;

pub use grants::{Grants, TopicPattern};
pub(crate) use watchdog::start_ticker;
pub use watchdog::{Stopped, Watchdog};
