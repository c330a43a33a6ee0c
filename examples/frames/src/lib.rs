//! A message type of one's own on a typed topic: camera frames.
//!
//! `Frame` is declared once, in WIT (`wit/frame.wit`), and used by both
//! components: the publisher writes each frame into a block of its pool, the
//! subscribers validate the untrusted bytes once and read width, height, tags
//! and pixels where they lie (`FrameView`). `flat_wit_macro::generate!` turns
//! the WIT record into an ordinary Rust struct with `#[derive(Flat)]`, whose
//! derive makes the view and the in-place builder (`FrameBuilder`); the C
//! subscriber (`subscriber-c/`) reads the same bytes through the header
//! `flat-wit c` makes from the same file.

use shm_guest::flat_layout::BuildError;

// `pub struct Frame { width: u32, height: u32, tags: Vec<String>, pixels:
// Vec<u8> }`, the fields in the WIT's order (which is the order of their
// bytes). The derive's code names the flat format through the guest crate,
// which re-exports it; the macro rebuilds the crate when the WIT changes.
flat_wit_macro::generate!({
    path: "wit",
    interface: "types",
    types: ["frame"],
    flat_crate: "shm_guest::flat_layout",
});

/// The topic.
pub const TOPIC: &str = "frames";

/// Writes frame `n` of `width` by `height` pixels in place, field by field,
/// as the publisher does: the pixels are computed straight into the block
/// (where a camera or a decoder would write them), nothing on the heap.
pub fn build_frame(
    n: u32,
    width: u32,
    height: u32,
    frame: &mut FrameBuilder<'_, '_, u32>,
) -> Result<(), BuildError> {
    frame.width().set(&width)?;
    frame.height().set(&height)?;
    let mut tags = frame.tags().list(2)?;
    tags.push_str("camera")?;
    tags.push_str(&format!("frame-{n}"))?;
    tags.finish()?;
    let mut pixels = frame.pixels().list(width as usize * height as usize)?;
    for (i, p) in pixels.elements_mut()?.iter_mut().enumerate() {
        *p = pixel(n, i as u32);
    }
    pixels.finish()
}

/// Frame `n` of `width` by `height` pixels as an owned value: what
/// [`build_frame`] writes, for `TypedPublisher::send` and for tests.
pub fn frame(n: u32, width: u32, height: u32) -> Frame {
    Frame {
        width,
        height,
        tags: vec!["camera".into(), format!("frame-{n}")],
        pixels: (0..width * height).map(|i| pixel(n, i)).collect(),
    }
}

/// The value of pixel `i` of frame `n`.
pub fn pixel(n: u32, i: u32) -> u8 {
    ((i + n * 7) % 251) as u8
}

/// Checks a received frame against what frame `n` must be; `Err` names the
/// first difference.
pub fn check(n: u32, frame: &FrameView<'_, u32>) -> Result<(), String> {
    let (w, h) = (frame.width(), frame.height());
    let pixels = frame.pixels().as_bytes();
    if pixels.len() as u64 != u64::from(w) * u64::from(h) {
        return Err(format!("frame {n}: {} pixels for {w}x{h}", pixels.len()));
    }
    if let Some(i) = (0..pixels.len()).find(|&i| pixels[i] != pixel(n, i as u32)) {
        return Err(format!("frame {n}: pixel {i} is {}", pixels[i]));
    }
    let tags: Vec<&str> = frame.tags().iter().collect();
    if tags != ["camera", format!("frame-{n}").as_str()] {
        return Err(format!("frame {n}: tags {tags:?}"));
    }
    Ok(())
}
