//! The `iceoryx2` mode: the same hand-off through iceoryx2 0.10, the
//! reference zero-copy publish/subscribe for native processes, as an anchor.
//! One `ipc` service per (payload size, subscribers), every port in this
//! process and on this thread, as the wasm modes are.

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;

/// An iceoryx2 node of this process.
pub struct Node {
    node: iceoryx2::node::Node<ipc::Service>,
}

impl Node {
    /// A node, or `None` (said on stderr) where iceoryx2 cannot run here.
    pub fn new() -> Option<Node> {
        match NodeBuilder::new().create::<ipc::Service>() {
            Ok(node) => Some(Node { node }),
            Err(e) => {
                eprintln!("delivery: no iceoryx2 node ({e:?}): the iceoryx2 mode is skipped");
                None
            }
        }
    }

    /// A publisher of `size`-byte messages and `subscribers` subscribers.
    pub fn topology(&self, size: u32, subscribers: usize) -> Option<Topology> {
        let name = format!(
            "shm-bench-delivery-{}-{size}-{subscribers}",
            std::process::id()
        );
        let name: ServiceName = name.as_str().try_into().ok()?;
        let service = self
            .node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(subscribers)
            .subscriber_max_buffer_size(1)
            .history_size(0)
            .create()
            .inspect_err(|e| eprintln!("delivery: iceoryx2 service: {e:?}"))
            .ok()?;
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(size as usize)
            .max_loaned_samples(1)
            .create()
            .inspect_err(|e| eprintln!("delivery: iceoryx2 publisher: {e:?}"))
            .ok()?;
        let subscribers = (0..subscribers)
            .map(|_| service.subscriber_builder().create().ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Topology {
            size: size as usize,
            publisher,
            subscribers,
            _service: service,
        })
    }
}

/// One publisher and its subscribers.
pub struct Topology {
    size: usize,
    publisher: Publisher<ipc::Service, [u8], ()>,
    subscribers: Vec<Subscriber<ipc::Service, [u8], ()>>,
    _service: PortFactory<ipc::Service, [u8], ()>,
}

impl Topology {
    /// One message: the publisher loans a slice, writes `seq` into its
    /// first 8 bytes and sends it; each subscriber receives it and sums one
    /// byte every `stride` bytes. Returns each subscriber's sum.
    pub fn deliver(&mut self, seq: u64, stride: u32) -> impl Iterator<Item = u64> + '_ {
        let mut sample = self
            .publisher
            .loan_slice_uninit(self.size)
            .expect("iceoryx2 loan");
        for (byte, value) in sample.payload_mut().iter_mut().zip(seq.to_le_bytes()) {
            byte.write(value);
        }
        // SAFETY: every byte of the slice is initialized. The first 8 were
        // just written; the others lie in the publisher's data segment, a
        // shared memory object that the kernel created zero-filled and that
        // only ever holds bytes written as `u8` (by `write` above, in
        // earlier messages), so no byte of it is uninitialized memory.
        let sample = unsafe { sample.assume_init() };
        sample.send().expect("iceoryx2 send");
        let stride = stride.max(1) as usize;
        self.subscribers.iter().map(move |s| {
            let sample = s.receive().expect("iceoryx2 receive").expect("a message");
            sample
                .payload()
                .iter()
                .step_by(stride)
                .map(|&b| u64::from(b))
                .sum()
        })
    }
}
