//! The hostile publisher and subscriber commands (`red-team.wasm`).
//!
//! The attack is `--attack NAME`, or the part of the component's name after
//! `red-team-` (a copy named `red-team-consume.wasm` runs `consume`), so that
//! one topology can run it beside honest subscribers that share the
//! `--subscriber-arg`s. Publishers publish the honest publisher's messages
//! (`pubsub-publisher`: a number, then its pattern) so that honest
//! subscribers check every byte.
//!
//! | attack | role | tries to |
//! |---|---|---|
//! | `consume` | subscriber | attach its read-only clone exclusively and consume everyone's bytes |
//! | `squat` | subscriber | create the topic's publisher |
//! | `rewrite-partition` | publisher | publish while keeping a writable partition of the block |
//! | `publish-clone` | publisher | publish a read-only clone and keep the writable handle |
//! | `spin` | subscriber | subscribe and spin, never taking a message |
//! | `stall` | subscriber | subscribe and not take until the host drops a message for it (at most 60 s), then drain |
//! | `hold` | subscriber | take one message of a pooled topic and never release it |
//! | `write-outside-window` | publisher | (pooled) write a message it just published and still holds, through its own mapping of the pool, while a write window onto another block is open |
//! | `write-after-publish-loan` | publisher | (pooled, loans) write a message through the loan it just published with `publish-and-loan`, while it holds the message and the next loan's window is open |
//! | `forge-loan` | publisher | (pooled, loans) publish and give back loans it was never given, a loan past its block, a loan again after publishing it, and end with a loan written but unpublished |
//! | `host-write-into-pool` | publisher | (pooled) make the host write a call's result into a committed message, through its own mapping of the pool, publish it, then store there itself |
//! | `alias-after-detach` | subscriber | make the host write a call's result into a read-only attachment, detach it, attach the next message's block read-only at the same address and have the host write there again (the fault handler must not take the new shared mapping for the old private page) |
//! | `topic-flood` | subscriber | subscribe to topics with 1 MiB names, subscribe to and leave 5,000 made-up topics, and make 2,000 refused calls (to grow the host's memory and flood its log), then read its topic |
//! | `copy-flood` | subscriber | make the host copy for it: attach an unaligned partition of 64 MiB (past the copy limit), then attach and detach unaligned 16 MiB partitions for up to 20 s (the host's copy work must count against its CPU budget) |
//! | `slow-hold` | subscriber | (pooled) hold each message just under the stall limit (1.7 s), then release it and take the next |
//! | `ring-scribble` | subscriber | (pooled) take its messages through a lease ring and write hostile values into the ring's returned region (counts backwards and far ahead, sequence numbers never offered, from the future, twice, an entry rewritten after its count), never returning a message honestly |
//! | `ring-write-offered` | subscriber | (pooled) write into its ring's offered region, which the host writes and maps read-only |
//! | `ring-hold` | subscriber | (pooled) take every message its ring offers and never return one |
//! | `spin-alone` | command | spin forever |
//! | `fail` | any | exit with an error status at once |

use std::time::Duration;

use shm_guest::pubsub::{PubSubError, Publisher, Subscriber};
use shm_guest::raw::AttachFlags;
use shm_guest::{Block, Error};

use crate::verdict;

mod ring;

/// Runs with `args` (`args[0]` is the component's name).
pub fn run(args: &[String]) -> Result<(), String> {
    let who = args.first().cloned().unwrap_or_else(|| "red-team".into());
    let mut rest: Vec<String> = args.iter().skip(1).cloned().collect();
    let attack = match rest.iter().position(|a| a == "--attack") {
        Some(i) if i + 1 < rest.len() => {
            let a = rest.remove(i + 1);
            rest.remove(i);
            a
        }
        _ => who
            .split('#')
            .next()
            .and_then(|n| n.strip_prefix("red-team-"))
            .ok_or("no attack: give --attack NAME or name the component red-team-NAME")?
            .to_string(),
    };
    // The first argument that is not a flag (honest subscribers' flags,
    // such as `--pooled`, come along with the shared arguments).
    let topic = rest
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "numbers".into());
    let number = |i: usize, default: u64| -> u64 {
        rest.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    // Storage for the raw attaches below (the guards donate on their own).
    shm_guest::reserve_storage(4, 64 * 1024).map_err(|e| format!("donating storage: {e}"))?;
    match attack.as_str() {
        "consume" => consume(&who, &topic),
        "squat" => squat(&who, &topic),
        "rewrite-partition" => publish_numbers(&who, &topic, number(1, 20) as u32, true),
        "publish-clone" => publish_numbers(&who, &topic, number(1, 20) as u32, false),
        "write-outside-window" => write_outside_window(&who, &topic, number(1, 20) as u32),
        "write-after-publish-loan" => write_after_publish_loan(&who, &topic, number(1, 20) as u32),
        "host-write-into-pool" => host_write_into_pool(&who, &topic),
        "alias-after-detach" => alias_after_detach(&who, &topic),
        "topic-flood" => topic_flood(&who, &topic),
        "copy-flood" => copy_flood(&who, &topic),
        "slow-hold" => slow_hold(&who, &topic),
        "forge-loan" => forge_loans(&who, &topic, number(1, 20) as u32),
        "spin" => {
            let _s = subscribe(&topic)?;
            println!("{who}: subscribed, spinning");
            spin()
        }
        "stall" => stall(&who, &topic),
        "ring-scribble" => ring::scribble(&who, &topic),
        "ring-write-offered" => ring::write_offered(&who, &topic),
        "ring-hold" => ring::hold(&who, &topic),
        "hold" => hold(&who, &topic),
        "spin-alone" => spin(),
        "fail" => Err("failing on purpose".into()),
        other => Err(format!("unknown attack {other}")),
    }
}

fn subscribe(topic: &str) -> Result<Subscriber, String> {
    Subscriber::new(topic).map_err(|e| format!("subscribing to {topic}: {e}"))
}

/// Never returns, never calls the host.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn sleep_ms(ms: u64) {
    for _ in 0..ms / 10 {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn consume(who: &str, topic: &str) -> Result<(), String> {
    let s = subscribe(topic)?;
    let mut received = 0;
    while let Some(m) = s.next_message() {
        received += 1;
        let raw = m.as_raw();
        let size = raw
            .attach(AttachFlags::SHARED)
            .map_err(|e| format!("{e:?}"))?
            .size;
        let _ = raw.detach(size);
        verdict(
            who,
            "an exclusive read of a clone (to consume for everyone)",
            match m.attach_consume() {
                Err(Error::ReadOnly) => Ok("read-only".into()),
                Err(e) => Ok(e.to_string()),
                Ok(g) => {
                    let n = g.len();
                    g.consume(n).map_err(|e| e.to_string())?;
                    Err(format!("consumed {n} bytes"))
                }
            },
        );
        let after = raw
            .attach(AttachFlags::SHARED)
            .map_err(|e| format!("{e:?}"))?
            .size;
        let _ = raw.detach(0);
        verdict(
            who,
            "consuming through a shared read",
            if after == size {
                Ok(format!("still {size} bytes"))
            } else {
                Err(format!("{size} bytes became {after}"))
            },
        );
    }
    println!("{who}: received {received} messages");
    Ok(())
}

fn squat(who: &str, topic: &str) -> Result<(), String> {
    let s = subscribe(topic)?;
    for (how, made) in [
        (
            "creating the topic's publisher",
            Publisher::new(topic, 4, 64),
        ),
        (
            "creating a pooled publisher",
            Publisher::pooled(topic, 4, 64),
        ),
    ] {
        verdict(
            who,
            how,
            match made {
                Err(PubSubError::NotPermitted) => Ok("not permitted".into()),
                Err(e) => Ok(e.to_string()),
                Ok(p) => {
                    // Forge a message as the honest publisher would.
                    let forged = p.allocate().map_err(|e| e.to_string())?.0;
                    write_message(&forged, 0, 64)?;
                    let _ = p.publish(forged);
                    Err("a forged message was published".into())
                }
            },
        );
    }
    let received = s.count();
    println!("{who}: received {received} messages");
    Ok(())
}

/// Writes message `i` of `size` bytes as `pubsub-publisher` does.
fn write_message(block: &Block, i: u32, size: usize) -> Result<(), String> {
    let mut w = block.attach_write().map_err(|e| e.to_string())?;
    w[..4].copy_from_slice(&i.to_le_bytes());
    w[4..size].fill((i % 251) as u8);
    w.commit(size).map_err(|e| e.to_string())
}

fn allocate(p: &Publisher) -> Result<Block, String> {
    loop {
        match p.allocate() {
            Ok((b, _)) => return Ok(b),
            Err(PubSubError::PoolExhausted) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("allocating: {e}")),
        }
    }
}

/// Publishes `count` honest messages, each after one attempt to publish a
/// message it could still change: with a writable partition kept
/// (`partition`), or as a read-only clone with the writable handle kept.
fn publish_numbers(who: &str, topic: &str, count: u32, partition: bool) -> Result<(), String> {
    const SIZE: usize = 64;
    let p = Publisher::new(topic, 4, SIZE as u32).map_err(|e| format!("publisher: {e}"))?;
    for i in 0..count {
        let block = allocate(&p)?;
        write_message(&block, i, SIZE)?;
        if partition {
            let part = block
                .partition(0, SIZE as u32, true)
                .map_err(|e| e.to_string())?;
            verdict(
                who,
                "publishing while keeping a writable partition",
                match p.publish(block) {
                    Err(PubSubError::NotSoleWriter) => Ok("not the sole writer".into()),
                    Err(e) => Ok(e.to_string()),
                    Ok(()) => {
                        let mut w = part.attach_write().map_err(|e| e.to_string())?;
                        w.fill(0xEE);
                        w.commit(SIZE).map_err(|e| e.to_string())?;
                        Err("rewrote a published message".into())
                    }
                },
            );
        } else {
            let clone = block.read_only_clone().map_err(|e| e.to_string())?;
            verdict(
                who,
                "publishing a clone while keeping the writable handle",
                match p.publish(clone) {
                    Err(PubSubError::NotSoleWriter) => Ok("not the sole writer".into()),
                    Err(e) => Ok(e.to_string()),
                    Ok(()) => {
                        let mut w = block.attach_write().map_err(|e| e.to_string())?;
                        w.fill(0xEE);
                        w.commit(SIZE).map_err(|e| e.to_string())?;
                        Err("rewrote a published message".into())
                    }
                },
            );
        }
        // The honest message.
        let block = allocate(&p)?;
        write_message(&block, i, SIZE)?;
        p.publish(block)
            .map_err(|e| format!("publishing {i}: {e}"))?;
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("{who}: published {count} messages on {topic}");
    Ok(())
}

/// A pooled publisher: publishes message `i` honestly, takes it through a
/// subscription of its own (so that the block stays published and held
/// whatever the other subscribers do), opens a write window onto the next
/// block and writes into message `i` where its own pool mapping shows it
/// (the address its write attach had). With write windows that store traps
/// (the held block is read-only for it); without them the address was a
/// per-message mapping, gone at detach, and the write lands in the
/// publisher's own fresh pages. Either way the subscribers' bytes stay
/// intact.
fn write_outside_window(who: &str, topic: &str, count: u32) -> Result<(), String> {
    const SIZE: usize = 64;
    let p = Publisher::pooled(topic, 4, SIZE as u32).map_err(|e| format!("publisher: {e}"))?;
    let own = p
        .subscription()
        .map_err(|e| format!("subscribing to its own topic: {e}"))?;
    for i in 0..count {
        let block = allocate(&p)?;
        let at = {
            let mut w = block.attach_write().map_err(|e| e.to_string())?;
            let at = w.as_mut_ptr();
            w[..4].copy_from_slice(&i.to_le_bytes());
            w[4..SIZE].fill((i % 251) as u8);
            w.commit(SIZE).map_err(|e| e.to_string())?;
            at
        };
        p.publish(block)
            .map_err(|e| format!("publishing {i}: {e}"))?;
        let _held = own.try_next().ok_or("its own subscription got nothing")?;
        let next = allocate(&p)?;
        let _window = next.attach_write().map_err(|e| e.to_string())?;
        println!("{who}: writing into published message {i} at {at:p}");
        // SAFETY: none, on purpose: this is the attack. `at` is where the
        // host showed message `i` to this component; the write is a plain
        // store into its own linear memory, which the host must refuse
        // (a trap of this component) or make harmless.
        unsafe { at.write_volatile(0xEE) };
        println!("{who}: the write at {at:p} did not trap");
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("{who}: published {count} messages on {topic}");
    Ok(())
}

/// A pooled publisher with loans (one call per message) publishes a loan
/// and takes the next one in the same call, then writes through the
/// pointer of the loan it just published (a message it still holds through
/// a subscription of its own). `publish-loan` ends the loan's write window
/// before the message is sent: with write windows the store traps; without
/// them the address is a per-message mapping already undone (fresh pages of
/// its own), and every message arrives intact.
fn write_after_publish_loan(who: &str, topic: &str, count: u32) -> Result<(), String> {
    const SIZE: usize = 64;
    let p = Publisher::pooled(topic, 4, SIZE as u32).map_err(|e| format!("publisher: {e}"))?;
    let own = p
        .subscription()
        .map_err(|e| format!("subscribing to its own topic: {e}"))?;
    let loan_now = || loop {
        match p.loan() {
            Ok(l) => return Ok(l),
            Err(PubSubError::PoolExhausted) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("loan: {e}")),
        }
    };
    let mut loan = loan_now()?;
    for i in 0..count {
        loan[..4].copy_from_slice(&i.to_le_bytes());
        loan[4..SIZE].fill((i % 251) as u8);
        let at = loan.as_mut_ptr();
        let next = loan
            .publish_and_loan(SIZE as u32)
            .map_err(|e| format!("publishing {i}: {e}"))?;
        let _held = own.try_next().ok_or("its own subscription got nothing")?;
        loan = match next {
            Some(l) => l,
            None => loan_now()?,
        };
        println!("{who}: writing into published message {i} at {at:p}");
        // SAFETY: none, on purpose: this is the attack. `at` is where the
        // host showed the loan of message `i` to this component; the write
        // is a plain store into its own linear memory, which the host must
        // refuse (a trap of this component) or make harmless.
        unsafe { at.write_volatile(0xEE) };
        println!("{who}: the write at {at:p} did not trap");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(loan);
    println!("{who}: published {count} messages on {topic}");
    Ok(())
}

/// A pooled publisher writes message 0 into its only pool block and
/// commits it, then calls a host function (`publisher.pool-storage`, whose
/// result the host writes to a place the caller names) with that message's
/// place in its own pool mapping, publishes the block as it is, and stores
/// there itself. With write windows the page is read-only for it outside
/// the window: the host's write is absorbed into a private copy of that
/// page (the block stays intact, and the subscriber checks it after the
/// write), and its own store traps. Without windows the place is its own
/// fresh pages and nothing is shared there.
fn host_write_into_pool(who: &str, topic: &str) -> Result<(), String> {
    #[cfg(target_arch = "wasm32")]
    {
        use shm_guest::raw::pub_sub;
        #[link(wasm_import_module = "zero-copy:shm/pub-sub@0.1.0")]
        extern "C" {
            /// The import as the canonical ABI lowers it: the result
            /// (`result<u32, pub-sub-error>`, 8 bytes) is written at `ret`.
            #[link_name = "[method]publisher.pool-storage"]
            fn pool_storage(this: i32, ret: *mut u8);
        }
        const SIZE: usize = 64;
        let p = pub_sub::Publisher::pooled(topic, 1, SIZE as u32)
            .map_err(|e| format!("publisher: {e:?}"))?;
        let need = p.pool_storage().map_err(|e| format!("{e:?}"))?;
        shm_guest::donate_storage(need).map_err(|e| e.to_string())?;
        p.map_pool()
            .map_err(|e| format!("mapping the pool: {e:?}"))?;
        let (raw, _) = p.allocate().map_err(|e| format!("{e:?}"))?;
        let block = Block::from_raw(raw);
        let at = {
            let mut w = block.attach_write().map_err(|e| e.to_string())?;
            let at = w.as_mut_ptr();
            w[..4].copy_from_slice(&0u32.to_le_bytes());
            w[4..SIZE].fill(0);
            w.commit(SIZE).map_err(|e| e.to_string())?;
            at
        };
        // Back to the pool, committed, window closed.
        drop(block);
        println!("{who}: asking the host to write into message 0 at {at:p}");
        // SAFETY: none, on purpose: this is the attack. The import writes
        // 8 bytes at `at`, inside this component's own linear memory.
        unsafe { pool_storage(p.handle() as i32, at) };
        let (raw, valid) = p.allocate().map_err(|e| format!("{e:?}"))?;
        if valid as usize != SIZE {
            return Err(format!("the pool block came back with {valid} valid bytes"));
        }
        p.publish(raw).map_err(|e| format!("publishing: {e:?}"))?;
        println!("{who}: published message 0 as committed; storing at {at:p} myself");
        // SAFETY: as above, a plain store into its own memory.
        unsafe { at.add(8).write_volatile(0xEE) };
        println!("{who}: the store at {at:p} did not trap");
        Ok(())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (who, topic);
        Err("host-write-into-pool needs a wasm host".into())
    }
}

/// A subscriber of a topic of mapped (page-sized) messages: attaches each
/// message read-only and has the host write a call's result
/// (`subscriber.pool-storage`, 8 bytes at a place the caller names) at the
/// start of that attachment, then detaches. The next message's block is
/// attached read-only at the same address (the storage just freed), and
/// the host is asked to write there again, while a second read-only
/// attachment of the same block (a clone) shows its shared pages. The
/// host's write must land in a private copy of the page each time: the
/// clone must still show the publisher's bytes. (The fault handler once
/// remembered the page it had made private by address alone, and took the
/// new shared mapping at that address for it.)
fn alias_after_detach(who: &str, topic: &str) -> Result<(), String> {
    #[cfg(target_arch = "wasm32")]
    {
        #[link(wasm_import_module = "zero-copy:shm/pub-sub@0.1.0")]
        extern "C" {
            /// The import as the canonical ABI lowers it: the result
            /// (`result<u32, pub-sub-error>`, 8 bytes) is written at `ret`.
            #[link_name = "[method]subscriber.pool-storage"]
            fn pool_storage(this: i32, ret: *mut u8);
        }
        let s = shm_guest::raw::pub_sub::Subscriber::new(topic)
            .map_err(|e| format!("subscribing to {topic}: {e:?}"))?;
        let this = s.handle() as i32;
        let mut received = 0u32;
        let mut same_place = 0u32;
        let mut last: Option<usize> = None;
        while let Some(m) = s.next().map(Block::from_raw) {
            received += 1;
            let clone = m.read_only_clone().map_err(|e| e.to_string())?;
            let raw = m.as_raw();
            let area = raw
                .attach(AttachFlags::SHARED)
                .map_err(|e| format!("{e:?}"))?;
            let at = area.address as usize;
            if area.size < 8 {
                let _ = raw.detach(0);
                continue;
            }
            if last == Some(at) {
                same_place += 1;
            }
            // The block's shared pages, seen through the clone.
            let seen = clone.attach_read().map_err(|e| e.to_string())?;
            let before: Vec<u8> = seen[..8].to_vec();
            // SAFETY: none, on purpose: this is the attack. The import
            // writes 8 bytes at `at`, inside this component's own
            // read-only attachment.
            unsafe { pool_storage(this, at as *mut u8) };
            let after: Vec<u8> = seen[..8].to_vec();
            drop(seen);
            verdict(
                who,
                &format!(
                    "a host write into message {received}'s read-only attachment at {at:#x}{}",
                    if last == Some(at) {
                        " (where the last message's was)"
                    } else {
                        ""
                    }
                ),
                if before == after {
                    Ok("the block is unchanged".into())
                } else {
                    Err(format!("the block changed: {before:?} became {after:?}"))
                },
            );
            let _ = raw.detach(0);
            last = Some(at);
        }
        println!(
            "{who}: received {received} messages, {same_place} attached where the last one was"
        );
        Ok(())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (who, topic);
        Err("alias-after-detach needs a wasm host".into())
    }
}

/// A pooled publisher with loans, through the raw interface (a loan is a
/// number it could make up): publishes and gives back loans it was never
/// given, publishes its own loan past the block, publishes each loan a
/// second time and gives it back after publishing it. Between the attempts
/// it publishes `count` honest messages. Then it writes 0xEE over a last
/// loan and ends without publishing or giving it back: the host must
/// refuse every made-up or spent loan with `unknown-lease` (nothing sent),
/// and end the open loan unsent when the publisher goes.
fn forge_loans(who: &str, topic: &str, count: u32) -> Result<(), String> {
    use shm_guest::raw::pub_sub::{PubSubError as E, Publisher as RawPublisher};
    const SIZE: u32 = 64;
    // Not mapped: each loan maps its block on its own (storage reserved
    // in `run`).
    let p = RawPublisher::pooled(topic, 4, SIZE).map_err(|e| format!("publisher: {e:?}"))?;
    let loan_now = || loop {
        match p.loan_within(1000) {
            Ok(l) => return Ok(l),
            Err(E::PoolExhausted) => {}
            Err(e) => return Err(format!("loan: {e:?}")),
        }
    };
    let unknown = |r: Result<(), E>| match r {
        Err(E::UnknownLease) => Ok("unknown-lease".to_string()),
        Err(e) => Ok(format!("{e:?}")),
        Ok(()) => Err("the host took it".to_string()),
    };
    let mut loan = loan_now()?;
    let own = loan.loan;
    for forged in [
        0,
        1,
        own.wrapping_add(1),
        own.wrapping_sub(1),
        own ^ (1 << 32),
        u64::MAX,
    ] {
        if forged == own {
            continue;
        }
        verdict(
            who,
            &format!("publishing loan {forged}, never given"),
            unknown(p.publish_loan(forged, SIZE, false).map(|_| ())),
        );
        verdict(
            who,
            &format!("giving back loan {forged}, never given"),
            unknown(p.drop_loan(forged)),
        );
    }
    verdict(
        who,
        "publishing its loan past the block",
        match p.publish_loan(own, loan.size + 1, false) {
            Err(E::InvalidArgument) => Ok("invalid-argument".into()),
            Err(e) => Ok(format!("{e:?}")),
            Ok(_) => Err(format!(
                "{} bytes sent from a block of {}",
                loan.size + 1,
                loan.size
            )),
        },
    );
    for i in 0..count {
        write_loan(&p, &loan, |bytes| {
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            bytes[4..SIZE as usize].fill((i % 251) as u8);
        });
        let spent = loan.loan;
        let next = p
            .publish_loan(spent, SIZE, true)
            .map_err(|e| format!("publishing {i}: {e:?}"))?;
        verdict(
            who,
            &format!("publishing message {i}'s loan again"),
            unknown(p.publish_loan(spent, SIZE, false).map(|_| ())),
        );
        verdict(
            who,
            &format!("giving back message {i}'s loan after publishing it"),
            unknown(p.drop_loan(spent)),
        );
        loan = match next {
            Some(l) => l,
            None => loan_now()?,
        };
    }
    write_loan(&p, &loan, |bytes| bytes.fill(0xEE));
    println!(
        "{who}: published {count} messages on {topic}; ending with loan {} written, unpublished",
        loan.loan
    );
    Ok(())
}

/// Lets `write` fill the bytes of `loan`, held by `p`.
fn write_loan(
    p: &shm_guest::raw::pub_sub::Publisher,
    loan: &shm_guest::raw::pub_sub::PooledLoan,
    write: impl FnOnce(&mut [u8]),
) {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = p;
        // SAFETY: `loan` is held by `p` (not yet published or given back):
        // the host attached its block for writing at `address`, `size`
        // bytes of this component's own linear memory, and nothing else
        // refers to those bytes until the loan ends, after `write` returns.
        write(unsafe {
            core::slice::from_raw_parts_mut(loan.address as usize as *mut u8, loan.size as usize)
        });
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        // SAFETY: `loan` is held by `p`, and the slice ends with `write`,
        // before the loan is published or given back; it is the only one.
        if let Some(bytes) = unsafe { p.loan_bytes(loan.loan) } {
            write(bytes);
        }
    }
}

/// Subscribes to its topic (so that the topology starts), then tries to
/// make the host store what it names and log what it refuses: 64
/// subscriptions to topics with 1 MiB names (each must be refused with
/// `invalid-argument`, nothing stored), 5,000 subscriptions to distinct
/// made-up topics of the longest allowed name, each left at once (the host
/// must forget each topic when its last member leaves), and 2,000
/// subscriptions to a topic it was not granted (each refused; the host may
/// log only a few of them). Then it reads its topic like an honest
/// subscriber.
fn topic_flood(who: &str, topic: &str) -> Result<(), String> {
    let mut s = subscribe(topic)?;
    for i in 0..64u32 {
        let name = format!("{i:08}").repeat(1 << 17);
        verdict(
            who,
            &format!("subscribing to a topic with a {} byte name", name.len()),
            match Subscriber::new(&name) {
                Err(PubSubError::InvalidArgument) => Ok("invalid-argument".into()),
                Err(e) => Ok(e.to_string()),
                Ok(_) => Err("the host took the name".into()),
            },
        );
    }
    let mut made = 0u32;
    for i in 0..5000u32 {
        let name = format!("flood/{i:010}/{}", "f".repeat(255 - 17));
        if Subscriber::new(&name).is_ok() {
            made += 1;
        }
    }
    let mut refused = 0u32;
    for i in 0..2000u32 {
        if let Err(PubSubError::NotPermitted) = Subscriber::new(&format!("not-granted/{i}")) {
            refused += 1;
        }
    }
    verdict(
        who,
        "2000 subscriptions to a topic it was not granted",
        if refused == 2000 {
            Ok("not-permitted, every one".into())
        } else {
            Err(format!("only {refused} refused"))
        },
    );
    let received = s.by_ref().count();
    println!("{who}: made and left {made} topics; received {received} messages");
    Ok(())
}

/// Subscribes (so that the topology starts; it never takes a message),
/// then makes the host copy on its behalf: an unaligned partition cannot
/// be mapped, so attaching it makes the host copy its bytes into the
/// guest. With `COPY_FLOOD_MIB` = N (16 by default, the host's default
/// copy limit; the test runs the host with a limit of N MiB), a partition
/// of N MiB + 1 byte must be refused (`limit-exceeded`); then it attaches
/// and detaches partitions of N MiB - 1 byte for up to 12 seconds. The
/// host's copies must count against its CPU budget: the test gives it
/// three seconds, so it must be stopped long before the loop ends.
fn copy_flood(who: &str, topic: &str) -> Result<(), String> {
    const MIB: u32 = 1 << 20;
    let n: u32 = std::env::var("COPY_FLOOD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let _s = subscribe(topic)?;
    let size = (n + 1) * MIB;
    shm_guest::donate_storage(size + n * MIB + 2 * MIB).map_err(|e| format!("donating: {e}"))?;
    let block = Block::new(size).map_err(|e| format!("creating: {e}"))?;
    {
        let mut w = block.attach_write().map_err(|e| e.to_string())?;
        w.fill(0x5A);
        w.commit(size as usize).map_err(|e| e.to_string())?;
    }
    verdict(
        who,
        &format!("attaching an unaligned partition of {n} MiB + 1 byte (a copy past the limit)"),
        match block
            .partition(1, n * MIB + 1, false)
            .map_err(|e| e.to_string())?
            .attach_read()
        {
            Err(Error::LimitExceeded) => Ok("limit-exceeded".into()),
            Err(e) => Ok(e.to_string()),
            Ok(g) => Err(format!("the host copied {} bytes", g.len())),
        },
    );
    let part = block
        .partition(1, n * MIB - 1, false)
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let mut copies = 0u32;
    while started.elapsed() < Duration::from_secs(12) {
        let g = part.attach_read().map_err(|e| e.to_string())?;
        copies += 1;
        drop(g);
    }
    println!("{who}: the host copied {n} MiB for it {copies} times in 12 s");
    Ok(())
}

/// A pooled subscriber that holds each message for 1.7 s (just under the
/// tests' stall limit of 2 s; the first for `SLOW_HOLD_MS` when set), then
/// takes the next: never stalled long enough to be evicted, it must still
/// cost only itself.
fn slow_hold(who: &str, topic: &str) -> Result<(), String> {
    let first_ms: u64 = std::env::var("SLOW_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1700);
    let s = subscribe(topic)?;
    let mut message = s.next_pooled().map_err(|e| format!("taking: {e}"))?;
    let mut held = 0u32;
    while let Some(m) = message {
        sleep_ms(if held == 0 { first_ms } else { 1700 });
        held += 1;
        message = s.next_pooled_after(m).map_err(|e| format!("taking: {e}"))?;
    }
    println!("{who}: held {held} messages, {} dropped", s.dropped());
    Ok(())
}

fn stall(who: &str, topic: &str) -> Result<(), String> {
    let mut s = subscribe(topic)?;
    println!("{who}: subscribed, not taking until a message is dropped (at most 60 s)");
    let started = std::time::Instant::now();
    while s.dropped() == 0 && started.elapsed() < Duration::from_secs(60) {
        sleep_ms(10);
    }
    let received = s.by_ref().count();
    println!(
        "{who}: took {received} messages after stalling, {} dropped",
        s.dropped()
    );
    Ok(())
}

fn hold(who: &str, topic: &str) -> Result<(), String> {
    let s = subscribe(topic)?;
    // Maps the pool once the topic's publisher shares it.
    let held = s
        .next_pooled()
        .map_err(|e| format!("taking: {e}"))?
        .ok_or("no message")?;
    println!("{who}: holding a message of {} bytes forever", held.len());
    loop {
        sleep_ms(10);
    }
}
