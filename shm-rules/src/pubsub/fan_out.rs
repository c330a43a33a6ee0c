//! Publishing a message to every subscription of its topic: one read-only
//! clone of the block per queue, pushed under the queue's bound and policy.

use super::{PubSubConfig, PubSubError, Pushed, Reclaimer, Topic};
use crate::HandleId;

/// Queues a published message for every subscription of `topic` (called
/// `name`): `clone` makes one handle of the message's block per queue (a
/// read-only clone held by the backend's pool holder), pushed under
/// [`PubSubConfig::queue`] and the queue's policy (its own, or the
/// config's). A clone no queue keeps, and a message dropped to make room
/// (`drop-oldest`), go back through [`Reclaimer::drop_queued`]; a queue
/// that stayed full for the stall limit (`block`) is the backend's to end
/// ([`Reclaimer::stalled_queue`]: the host evicts its guest). Fails with
/// `internal` when a clone cannot be made. Subscribers are woken only if
/// `wake` (a batch's last message wakes them once; a full queue always
/// does).
pub fn fan_out(
    topic: &Topic,
    name: &str,
    config: &PubSubConfig,
    mut clone: impl FnMut() -> Option<HandleId>,
    backend: &impl Reclaimer,
    wake: bool,
) -> Result<(), PubSubError> {
    let stall = Some(config.stall_limit);
    for q in topic.queues() {
        let handle = clone().ok_or(PubSubError::Internal)?;
        let drop_oldest = |oldest| backend.drop_queued(oldest);
        let pushed = q.push_waking(
            handle,
            config.queue,
            config.overflow,
            stall,
            drop_oldest,
            wake,
        );
        match pushed {
            Pushed::Queued => {}
            Pushed::Left => backend.drop_queued(handle),
            Pushed::Stalled => {
                backend.drop_queued(handle);
                let reason = format!(
                    "left its full queue of topic `{name}` untaken for the stall limit of {:?}",
                    config.stall_limit
                );
                backend.stalled_queue(&q, reason);
            }
        }
    }
    Ok(())
}
