//! What decoding a data map holds at its peak: the CBOR form costs about
//! what the same data sent as JSON does, and data far over the data limit
//! costs no more than data just over it, so no body a job server reads
//! makes it allocate many times more than that limit implies; a document a
//! client reads costs what its data does, and nothing for fields it does
//! not know.
//!
//! The allocator of this test binary records its high-water mark; the
//! tests compare peaks measured in one run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

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

/// Held by each test for its whole run: the tests run on threads of one
/// process, and each measures every allocation in it.
fn alone() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let _alone = alone();
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

/// `{"data": {"a": [[], [], …]}}` with `items` empty arrays, as a request
/// body: JSON, or the map as base64 CBOR.
fn body(items: usize, cbor: bool) -> String {
    if cbor {
        let mut bytes = vec![0xa1, 0x61, b'a', 0x9f];
        bytes.resize(bytes.len() + items, 0x80);
        bytes.push(0xff);
        format!("{{\"data\":\"{}\"}}", STANDARD.encode(bytes))
    } else {
        let mut text = String::from("{\"data\":{\"a\":[[]");
        text.push_str(&",[]".repeat(items - 1));
        text.push_str("]}}");
        text
    }
}

#[test]
fn data_far_over_the_limit_is_refused_holding_a_bounded_multiple_of_it() {
    use coordinate::rest::wire::data::is_too_large;
    use coordinate::rest::wire::WorkUnitBody;
    use coordinate::rules::limits::MAX_DATA_BYTES;
    let _alone = alone();
    // Each form at two sizes past the limit (an empty array counts as
    // three bytes of JSON, with its comma), the second body twice the
    // first: decoding stops keeping items at the limit, so the second
    // peaks no higher, but for the CBOR form's decoded bytes.
    for (items, cbor) in [(2_500_000, false), (4_000_000, true)] {
        let mut peaks = Vec::new();
        for items in [items, 2 * items] {
            let body = body(items, cbor);
            let (refused, peak) = peak_of(|| serde_json::from_str::<WorkUnitBody>(&body).err());
            let refused = refused.expect("refused");
            assert!(is_too_large(&refused), "{refused}");
            peaks.push(peak);
        }
        let decoded = if cbor { items } else { 0 };
        assert!(
            peaks[1] <= peaks[0] + decoded + decoded / 4,
            "cbor {cbor}: peaks {peaks:?}"
        );
        assert!(
            peaks[1] <= 32 * MAX_DATA_BYTES,
            "cbor {cbor}: peaks {peaks:?}"
        );
    }
}

#[test]
fn a_priority_of_the_wrong_type_is_refused_unread() {
    use coordinate::rest::wire::WorkUnitBody;
    let _alone = alone();
    for priority in [format!("[0{}]", ",0".repeat(1 << 20)), "[".repeat(1000)] {
        let body = format!("{{\"meta\":{{\"priority\":{priority}}}}}");
        let (refused, peak) = peak_of(|| serde_json::from_str::<WorkUnitBody>(&body).err());
        let refused = refused.expect("refused").to_string();
        assert!(refused.starts_with("invalid type: sequence"), "{refused}");
        assert!(peak < 1 << 16, "peak {peak}");
    }
}

/// The documents a client reads, each with `{"a": [[], [], …]}` as its
/// data, or with that list as a field it does not know.
fn documents(extra: &str) -> [(&'static str, String); 4] {
    let unit = format!(
        r#"{{"name":"u","url":"/u","status":"available","meta":{{"priority":0,"not_before":null}},"work_spec_url":"/s","attempts_url":"/a"{extra}}}"#
    );
    let summary =
        r#""url":"/at","work_unit_url":"/u","worker_url":"/w","start_time":"2026-01-01T00:00:00Z""#;
    let links =
        r#""renew_url":"/r","expire_url":"/e","finish_url":"/f","fail_url":"/x","retry_url":"/y""#;
    let attempt = format!(
        r#"{{{summary},"status":"pending","expiration_time":"2026-01-01T00:00:00Z",{links}{extra}}}"#
    );
    [
        ("unit", unit.clone()),
        ("unchecked unit", unit),
        ("attempt", attempt.clone()),
        ("unchecked attempt", attempt),
    ]
}

/// Decodes `text` as the document `kind` names.
fn decode_document(kind: &str, text: &str) -> Result<(), serde_json::Error> {
    use coordinate::rest::wire::{
        AttemptDocument, UncheckedAttemptDocument, UncheckedWorkUnitDocument, WorkUnitDocument,
    };
    match kind {
        "unit" => serde_json::from_str::<WorkUnitDocument>(text).map(drop),
        "unchecked unit" => serde_json::from_str::<UncheckedWorkUnitDocument>(text).map(drop),
        "attempt" => serde_json::from_str::<AttemptDocument>(text).map(drop),
        _ => serde_json::from_str::<UncheckedAttemptDocument>(text).map(drop),
    }
}

#[test]
fn a_document_holds_its_data_once_and_skips_what_it_does_not_know() {
    let _alone = alone();
    let data = json_text();
    let (_, data_peak) = peak_of(|| serde_json::from_str::<DataMap>(&data).unwrap());
    for (kind, text) in documents(&format!(",\"data\":{data}")) {
        let (decoded, peak) = peak_of(|| decode_document(kind, &text));
        decoded.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(
            peak <= data_peak + data_peak / 4,
            "{kind}: peaked at {peak} bytes, its data alone at {data_peak}"
        );
    }
    let unknown = format!(",\"junk\":{}", &data[5..data.len() - 1]);
    for (kind, text) in documents(&unknown) {
        let (decoded, peak) = peak_of(|| decode_document(kind, &text));
        decoded.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(peak < 1 << 16, "{kind}: peaked at {peak} bytes");
    }
}
