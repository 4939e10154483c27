//! Decoding the CBOR form of a data map costs about what decoding the same
//! data sent as JSON does, so a body of tiny CBOR items cannot make a job
//! server allocate many times more than the JSON body limit implies.
//!
//! The allocator of this test binary records its high-water mark; the one
//! test here compares the two forms' peaks, measured in one run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use coordinate::rest::wire::data::from_cbor_base64;
use coordinate::DataMap;

struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Peak = Peak;

/// Bytes allocated at the peak of `f`, beyond what was live before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - before)
}

const ITEMS: u32 = 200_000;

/// `{"a": [[], [], …]}` as CBOR: one byte per empty array.
fn cbor_base64() -> String {
    let mut bytes = vec![0xa1, 0x61, b'a', 0x9a];
    bytes.extend_from_slice(&ITEMS.to_be_bytes());
    bytes.resize(bytes.len() + ITEMS as usize, 0x80);
    STANDARD.encode(bytes)
}

/// The same map as JSON text: three bytes per empty array.
fn json_text() -> String {
    let mut text = String::from("{\"a\":[");
    for i in 0..ITEMS {
        text.push_str(if i == 0 { "[]" } else { ",[]" });
    }
    text.push_str("]}");
    text
}

#[test]
fn cbor_data_costs_about_what_json_does() {
    let (cbor, json) = (cbor_base64(), json_text());
    let (from_json, json_peak) = peak_of(|| serde_json::from_str::<DataMap>(&json).unwrap());
    let (from_cbor, cbor_peak) = peak_of(|| from_cbor_base64(&cbor).unwrap());
    assert_eq!(from_cbor, from_json);
    // The CBOR side also holds the decoded base64, one byte per item.
    assert!(
        cbor_peak * 4 <= json_peak * 5,
        "CBOR decoding peaked at {cbor_peak} bytes, JSON at {json_peak}"
    );
}
