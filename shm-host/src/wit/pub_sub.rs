//! The `zero-copy:shm/pub-sub` interface in a linker: its resources and
//! functions, each a call into [`crate::pubsub`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shm_rules::pubsub::Queue;
use wasmtime::component::{
    Destination, Linker, Resource, ResourceType, StreamProducer, StreamReader, StreamResult,
};
use wasmtime::StoreContextMut;

use super::bindings::pub_sub::PubSubError as WitError;
use super::ShmCtxView;
use crate::pubsub::{receive, Publisher, Subscriber};
use crate::rules::PubSubError;
use crate::MemoryBlock;

/// A subscription's queue as a component-model stream: each read takes the
/// next message (moving its handle into the reading store), or waits for
/// one, or ends the stream once the publisher is gone.
struct QueueStream<T> {
    queue: Arc<Queue>,
    get: fn(&mut T) -> ShmCtxView<'_>,
}

impl<T: 'static> StreamProducer<T> for QueueStream<T> {
    type Item = Resource<MemoryBlock>;
    type Buffer = Option<Resource<MemoryBlock>>;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, T>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let handle = match self.queue.poll_pop(cx, finish) {
            Poll::Ready(Some(h)) => h,
            Poll::Ready(None) if finish && !self.queue.is_finished() => {
                return Poll::Ready(Ok(StreamResult::Cancelled))
            }
            Poll::Ready(None) => return Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending => return Poll::Pending,
        };
        let view = (self.get)(store.data_mut());
        receive(view.ctx, handle)?;
        let block = view.table.push(MemoryBlock::new(handle))?;
        destination.set_buffer(Some(block));
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

/// A pub-sub result as the WIT has it.
fn wit<T>(r: Result<T, PubSubError>) -> Result<T, WitError> {
    r.map_err(WitError::from)
}

/// Adds the `zero-copy:shm/pub-sub` interface to `linker`, each host
/// function taking its view with `get` ([`super::add_to_linker_sync`]
/// passes [`super::ShmView::shm`]).
pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ShmCtxView<'_>,
) -> wasmtime::Result<()> {
    let mut inst = linker.instance(crate::PUB_SUB)?;
    inst.resource(
        "publisher",
        ResourceType::host::<Publisher>(),
        move |mut store, rep| {
            get(store.data_mut())
                .table
                .delete(Resource::<Publisher>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.resource(
        "subscriber",
        ResourceType::host::<Subscriber>(),
        move |mut store, rep| {
            get(store.data_mut())
                .table
                .delete(Resource::<Subscriber>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.func_wrap(
        "[constructor]publisher",
        move |mut store, (topic, elements, size): (String, u32, u32)| {
            let mut view = get(store.data_mut());
            Ok((match view.new_publisher(topic, elements, size, false) {
                Ok(p) => Ok(view.table.push(p)?),
                Err(e) => Err(WitError::from(e)),
            },))
        },
    )?;
    inst.func_wrap(
        "[static]publisher.pooled",
        move |mut store, (topic, elements, size): (String, u32, u32)| {
            let mut view = get(store.data_mut());
            Ok((match view.new_publisher(topic, elements, size, true) {
                Ok(p) => Ok(view.table.push(p)?),
                Err(e) => Err(WitError::from(e)),
            },))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.subscribers",
        move |mut store, (this,): (Resource<Publisher>,)| {
            let view = get(store.data_mut());
            let topic = view.table.get(&this)?.topic.clone();
            Ok((match Subscriber::new(view.ctx, topic, None) {
                Ok(s) => Ok(view.table.push(s)?),
                Err(e) => Err(WitError::from(e)),
            },))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.allocate",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((wit(get(store.data_mut()).allocate(&this)?),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.allocate-within",
        move |mut store, (this, timeout_ms): (Resource<Publisher>, u32)| {
            Ok((wit(
                get(store.data_mut()).within(timeout_ms, |v| v.allocate(&this))?
            ),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.publish",
        move |mut store, (this, block): (Resource<Publisher>, Resource<MemoryBlock>)| {
            Ok((wit(get(store.data_mut()).publish(&this, block)?),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.loan",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((wit(get(store.data_mut()).loan(&this)?),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.loan-within",
        move |mut store, (this, timeout_ms): (Resource<Publisher>, u32)| {
            Ok((wit(
                get(store.data_mut()).within(timeout_ms, |v| v.loan(&this))?
            ),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.publish-loan",
        move |mut store, (this, loan, size, next): (Resource<Publisher>, u64, u32, bool)| {
            Ok((wit(
                get(store.data_mut()).publish_loan(&this, loan, size, next)?
            ),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.drop-loan",
        move |mut store, (this, loan): (Resource<Publisher>, u64)| {
            Ok((wit(get(store.data_mut()).drop_loan(&this, loan)?),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.publish-loans",
        move |mut store, (this, loans, next): (Resource<Publisher>, Vec<(u64, u32)>, u32)| {
            Ok((wit(
                get(store.data_mut()).publish_loans(&this, &loans, next)?
            ),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.subscriber-count",
        move |mut store, (this,): (Resource<Publisher>,)| {
            let view = get(store.data_mut());
            let n = view.table.get(&this)?.topic.subscriber_count();
            Ok((u32::try_from(n).unwrap_or(u32::MAX),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.pool-storage",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((wit(get(store.data_mut()).publisher_pool_storage(&this)?),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.map-pool",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((wit(get(store.data_mut()).publisher_map_pool(&this)?),))
        },
    )?;
    inst.func_wrap(
        "[constructor]subscriber",
        move |mut store, (topic,): (String,)| {
            let mut view = get(store.data_mut());
            Ok((match view.new_subscriber(&topic) {
                Ok(s) => Ok(view.table.push(s)?),
                Err(e) => Err(WitError::from(e)),
            },))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.next",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).take(&this, true)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.try-next",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).take(&this, false)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.get-stream",
        move |mut store: StoreContextMut<'_, T>, (this,): (Resource<Subscriber>,)| {
            let queue = get(store.data_mut()).table.get(&this)?.queue.clone();
            let reader = StreamReader::new(&mut store, QueueStream { queue, get })?;
            Ok((reader,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.dropped",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            let view = get(store.data_mut());
            let dropped = view.table.get(&this)?.queue.dropped();
            Ok((dropped,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.pool-storage",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((wit(get(store.data_mut()).pool_storage(&this)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.map-pool",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((wit(get(store.data_mut()).map_pool(&this)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.next-pooled",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((wit(get(store.data_mut()).take_pooled(&this, true)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.try-next-pooled",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((wit(get(store.data_mut()).take_pooled(&this, false)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.release",
        move |mut store, (this, lease): (Resource<Subscriber>, u64)| {
            Ok((wit(get(store.data_mut()).release(&this, lease)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.next-pooled-after",
        move |mut store, (this, lease): (Resource<Subscriber>, u64)| {
            Ok((wit(
                get(store.data_mut()).take_pooled_after(&this, lease, true)?
            ),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.try-next-pooled-after",
        move |mut store, (this, lease): (Resource<Subscriber>, u64)| {
            Ok((wit(
                get(store.data_mut()).take_pooled_after(&this, lease, false)?
            ),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.ring-storage",
        move |mut store, (this, capacity): (Resource<Subscriber>, u32)| {
            Ok((wit(get(store.data_mut()).ring_storage(&this, capacity)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.map-ring",
        move |mut store, (this, capacity): (Resource<Subscriber>, u32)| {
            Ok((wit(get(store.data_mut()).map_ring(&this, capacity)?),))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.wait-ring",
        move |mut store, (this, seen, timeout_ms): (Resource<Subscriber>, u64, u32)| {
            Ok((wit(
                get(store.data_mut()).wait_ring(&this, seen, timeout_ms)?
            ),))
        },
    )?;
    Ok(())
}
