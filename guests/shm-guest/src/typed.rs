//! Typed topics: messages of a flat type (`flat-layout`), built in place in
//! the publisher's block and read in place by each subscriber after one
//! validation of the untrusted bytes.
//!
//! ```no_run
//! use shm_guest::flat_layout::Flat;
//! use shm_guest::typed::{TypedPublisher, TypedSubscriber};
//!
//! #[derive(Flat)]
//! #[flat(crate = "shm_guest::flat_layout")]
//! struct Frame {
//!     width: u32,
//!     height: u32,
//!     tags: Vec<String>,
//!     pixels: Vec<u8>,
//! }
//!
//! // Publisher: a pool of 4 blocks of 1 MiB; u32 offsets inside them.
//! let frames = TypedPublisher::<Frame, u32>::new("frames", 4, 1 << 20)?;
//! let frame = Frame { width: 2, height: 1, tags: vec!["front".into()], pixels: vec![1, 2] };
//! frames.send(&frame)?; // written into the block, published: no copy after
//!
//! // Subscriber (another component): validated once, read where it lies.
//! let subscriber = TypedSubscriber::<Frame, u32>::new("frames")?;
//! while let Some(message) = subscriber.next() {
//!     message.read(|frame| println!("{}x{}, tags {:?}", frame.width(), frame.height(), frame.tags()))?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The index type `I` (`u8`, `u16` or `u32`) sizes every offset and length
//! inside a message: `u32` for messages up to 4 GiB, `u16` or `u8` to save
//! header bytes in small messages. Publisher and subscribers must agree on
//! `T` and `I`: a subscriber reading with another type gets a validation
//! error, never wrong values.

use core::marker::PhantomData;
use core::time::Duration;

use flat_layout::{BuildError, Builder, Flat, Index, ValidateError};

use crate::pubsub::{PubSubError, Publisher, Subscriber};
use crate::{Block, Error};

/// Why a typed message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The topic refused (pool exhausted within the timeout, not permitted,
    /// ...).
    #[error(transparent)]
    PubSub(#[from] PubSubError),
    /// The block could not be attached or committed.
    #[error(transparent)]
    Block(#[from] Error),
    /// The message does not fit the block (or its offsets do not fit `I`):
    /// use larger blocks or a wider index type.
    #[error("the message does not fit: {0}")]
    Build(#[from] BuildError),
}

/// Why a typed message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The block could not be attached.
    #[error(transparent)]
    Block(#[from] Error),
    /// The bytes are not a valid message of this type: the publisher sent
    /// another type or index width, or is hostile.
    #[error("the message is not a valid one of this type: {0}")]
    Invalid(#[from] ValidateError),
}

/// The publishing side of a topic of `T` messages.
#[derive(Debug)]
pub struct TypedPublisher<T: Flat + ?Sized, I: Index = u32> {
    publisher: Publisher,
    wait: Duration,
    _type: PhantomData<fn(&T, I)>,
}

impl<T: Flat + ?Sized, I: Index> TypedPublisher<T, I> {
    /// A publisher on `topic` with `elements` blocks of `size` bytes.
    pub fn new(topic: &str, elements: u32, size: u32) -> Result<Self, PubSubError> {
        Ok(Self::from_publisher(Publisher::new(topic, elements, size)?))
    }

    /// A pooled publisher (see [`Publisher::pooled`]).
    pub fn pooled(topic: &str, elements: u32, size: u32) -> Result<Self, PubSubError> {
        Ok(Self::from_publisher(Publisher::pooled(
            topic, elements, size,
        )?))
    }

    /// Wraps an untyped publisher.
    pub fn from_publisher(publisher: Publisher) -> Self {
        TypedPublisher {
            publisher,
            wait: Duration::from_secs(10),
            _type: PhantomData,
        }
    }

    /// How long sending waits for a free block (default 10 s).
    pub fn wait_for_blocks(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The untyped publisher.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Writes `value` in place into a free block and publishes it.
    pub fn send(&self, value: &T) -> Result<(), SendError> {
        self.send_with(|block| Ok(flat_layout::write::<I, T>(value, block)?))
    }

    /// Builds the message in place with a [`Builder`] (list by list, string
    /// by string, a record field by field, with no value on the heap first)
    /// and publishes it. For a derived record, [`Builder::record`] returns
    /// its generated builder (`FrameBuilder` for a `Frame`): one slot per
    /// field; lists are filled element by element or, for numbers, written
    /// straight into the block through `elements_mut`. Fields left unset
    /// read as zero or empty.
    ///
    /// ```no_run
    /// # use shm_guest::flat_layout::Flat;
    /// # use shm_guest::typed::TypedPublisher;
    /// # #[derive(Flat)]
    /// # #[flat(crate = "shm_guest::flat_layout")]
    /// # struct Frame { width: u32, height: u32, tags: Vec<String>, pixels: Vec<u8> }
    /// let frames = TypedPublisher::<Frame, u32>::new("frames", 4, 1 << 20)?;
    /// frames.build(|message| {
    ///     let mut frame = message.record::<Frame>()?;
    ///     frame.width().set(&640u32)?;
    ///     frame.height().set(&480u32)?;
    ///     frame.tags().set(&["front"][..])?;
    ///     let mut pixels = frame.pixels().list(640 * 480)?;
    ///     pixels.elements_mut()?.fill(128); // the camera writes into the block
    ///     pixels.finish()
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(
        &self,
        build: impl FnOnce(&mut Builder<'_, I>) -> Result<(), BuildError>,
    ) -> Result<(), SendError> {
        self.send_with(|block| {
            let mut builder = Builder::<I>::new(block);
            build(&mut builder)?;
            Ok(builder.finish()?)
        })
    }

    /// Allocates (waiting for a free block), lets `fill` write the message
    /// into the whole block and say how many bytes are valid, publishes.
    fn send_with(
        &self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, SendError>,
    ) -> Result<(), SendError> {
        let (block, _) = self.publisher.allocate_within(self.wait)?;
        {
            let mut w = block.attach_write()?;
            let used = fill(&mut w)?;
            w.commit(used)?;
        }
        Ok(self.publisher.publish(block)?)
    }
}

/// The receiving side of a topic of `T` messages.
#[derive(Debug)]
pub struct TypedSubscriber<T: Flat + ?Sized, I: Index = u32> {
    subscriber: Subscriber,
    _type: PhantomData<fn(&T, I)>,
}

impl<T: Flat + ?Sized, I: Index> TypedSubscriber<T, I> {
    /// Subscribes to `topic`.
    pub fn new(topic: &str) -> Result<Self, PubSubError> {
        Ok(Self::from_subscriber(Subscriber::new(topic)?))
    }

    /// Wraps an untyped subscription.
    pub fn from_subscriber(subscriber: Subscriber) -> Self {
        TypedSubscriber {
            subscriber,
            _type: PhantomData,
        }
    }

    /// The untyped subscription.
    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    /// The next message, waiting for it; `None` once the publisher is gone
    /// and the queue is empty.
    pub fn next(&self) -> Option<Message<T, I>> {
        self.subscriber.next_message().map(Message::new)
    }

    /// The next message if one is queued.
    pub fn try_next(&self) -> Option<Message<T, I>> {
        self.subscriber.try_next().map(Message::new)
    }
}

/// A received message of type `T`: read it with [`Message::read`].
#[derive(Debug)]
pub struct Message<T: Flat + ?Sized, I: Index = u32> {
    block: Block,
    _type: PhantomData<fn(&T, I)>,
}

impl<T: Flat + ?Sized, I: Index> Message<T, I> {
    fn new(block: Block) -> Self {
        Message {
            block,
            _type: PhantomData,
        }
    }

    /// Attaches the message read-only, validates its bytes once and calls
    /// `f` with the view, which reads the values where they lie. The view
    /// cannot outlive the attachment.
    pub fn read<R>(&self, f: impl FnOnce(T::View<'_, I>) -> R) -> Result<R, ReadError> {
        let bytes = self.block.attach_read()?;
        let view = flat_layout::validate::<T, I>(&bytes)?;
        Ok(f(view))
    }

    /// The block, for untyped use.
    pub fn block(&self) -> &Block {
        &self.block
    }
}
