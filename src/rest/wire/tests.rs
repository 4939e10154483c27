use serde_json::json;

use super::*;
use crate::error::{Error, ObjectKind};
use crate::model::{DataMap, Duration, Time, WorkSpecMeta, WorkUnitQuery, WorkUnitStatus};

fn t(text: &str) -> Time {
    parse_time(text).unwrap()
}

#[test]
fn times_format_in_utc_without_trailing_zeros() {
    for (text, formatted) in [
        ("2024-05-06T07:08:09.5Z", "2024-05-06T07:08:09.5Z"),
        ("2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"),
        (
            "2024-05-06T09:08:09.123456789+02:00",
            "2024-05-06T07:08:09.123456789Z",
        ),
        ("2024-05-06T07:08:09.120000Z", "2024-05-06T07:08:09.12Z"),
    ] {
        assert_eq!(format_time(t(text)), formatted, "{text}");
    }
    assert_eq!(format_time(zero_time()), "0001-01-01T00:00:00Z");
}

#[test]
fn unset_times_are_the_zero_instant_or_null() {
    let meta: WorkUnitMetaDocument =
        serde_json::from_value(json!({"priority": 1, "not_before": "0001-01-01T00:00:00Z"}))
            .unwrap();
    assert_eq!(meta.not_before, None);
    let meta: WorkUnitMetaDocument = serde_json::from_value(json!({"not_before": null})).unwrap();
    assert_eq!(meta.not_before, None);
    let meta: WorkUnitMetaDocument = serde_json::from_value(json!({})).unwrap();
    assert_eq!(meta, WorkUnitMetaDocument::default());
    assert_eq!(
        serde_json::to_value(meta).unwrap(),
        json!({"priority": 0.0, "not_before": "0001-01-01T00:00:00Z"})
    );
    let meta: WorkUnitMetaDocument =
        serde_json::from_value(json!({"not_before": "2024-05-06T07:08:09+05:30"})).unwrap();
    assert_eq!(meta.not_before, Some(t("2024-05-06T01:38:09Z")));
    assert!(
        serde_json::from_value::<WorkUnitMetaDocument>(json!({"not_before": "yesterday"})).is_err()
    );
}

#[test]
fn the_zero_instant_as_a_real_time_keeps_a_spelling_of_its_own() {
    let set = WorkUnitMetaDocument {
        priority: 1.0,
        not_before: Some(zero_time()),
    };
    let v = serde_json::to_value(set).unwrap();
    assert_eq!(v["not_before"], "0001-01-01T00:00:00+00:00");
    assert_eq!(
        serde_json::from_value::<WorkUnitMetaDocument>(v).unwrap(),
        set
    );
    let far = parse_time("+10000-01-01T00:00:00Z").unwrap();
    assert_eq!(format_time(far), "+10000-01-01T00:00:00Z");
    let before = zero_time() - Duration::microseconds(1);
    assert_eq!(parse_time(&format_time(before)).unwrap(), before);
}

#[test]
fn non_finite_priorities_travel_as_strings() {
    for p in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, f64::MAX] {
        let doc = WorkUnitMetaDocument {
            priority: p,
            not_before: None,
        };
        let back: WorkUnitMetaDocument =
            serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert!(back.priority.total_cmp(&p).is_eq() || (p.is_nan() && back.priority.is_nan()));
    }
    assert!(serde_json::from_value::<WorkUnitMetaDocument>(json!({"priority": "high"})).is_err());
    assert_eq!(
        serde_json::to_value(WorkUnitMetaDocument::default()).unwrap()["priority"],
        json!(0.0)
    );
}

#[test]
fn durations_are_integer_nanoseconds() {
    let body: AttemptActionBody =
        serde_json::from_value(json!({"extend_duration": 900000000000i64, "delay": 1e3})).unwrap();
    assert_eq!(body.extend_duration, Duration::minutes(15));
    assert_eq!(body.delay, Duration::nanoseconds(1000));
    assert!(serde_json::from_value::<AttemptActionBody>(json!({"delay": 1.5})).is_err());
    let body: AttemptActionBody = serde_json::from_value(json!({"delay": "5"})).unwrap();
    assert_eq!(body.delay, Duration::nanoseconds(5));
    assert!(serde_json::from_value::<AttemptActionBody>(json!({"delay": "5.5"})).is_err());
    let out = serde_json::to_value(AttemptActionBody {
        data: None,
        extend_duration: Duration::seconds(-1),
        delay: Duration::zero(),
    })
    .unwrap();
    assert_eq!(out, json!({"extend_duration": -1000000000i64, "delay": 0}));
    // Spans beyond 64-bit nanoseconds travel exactly; beyond the
    // representable range they saturate.
    let millennium = Duration::days(365_000);
    let out = serde_json::to_string(&AttemptActionBody {
        data: None,
        extend_duration: millennium,
        delay: Duration::MAX,
    })
    .unwrap();
    assert!(
        out.contains(r#""extend_duration":"31536000000000000000","#),
        "{out}"
    );
    let back: AttemptActionBody = serde_json::from_str(&out).unwrap();
    assert_eq!(back.extend_duration, millennium);
    assert_eq!(back.delay, Duration::MAX);
    let exact = -Duration::days(719_162) - Duration::microseconds(1);
    let back: AttemptActionBody = serde_json::from_str(
        &serde_json::to_string(&AttemptActionBody {
            delay: exact,
            ..Default::default()
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(back.delay, exact);
    let back: AttemptActionBody =
        serde_json::from_value(json!({"delay": -1e40, "extend_duration": 1e40})).unwrap();
    assert_eq!(back.delay, Duration::MIN);
    assert_eq!(back.extend_duration, Duration::MAX);
}

#[test]
fn action_data_distinguishes_absent_null_and_empty() {
    let read = |v| serde_json::from_value::<AttemptActionBody>(v).unwrap().data;
    assert_eq!(read(json!({})), None);
    assert_eq!(read(json!({"data": null})), None);
    assert_eq!(read(json!({"data": {}})), Some(DataMap::new()));
}

#[test]
fn cbor_data_decodes_tuples_uuids_and_bytes() {
    let body: WorkUnitBody = serde_json::from_value(json!({"data": "oWRwYWly2ICCYWEB"})).unwrap();
    assert_eq!(body.data, Some(crate::data!({"pair": ["a", 1]})));
    let body: WorkUnitBody =
        serde_json::from_value(json!({"data": "oWJpZNglUA9OSyqMHU5Vmgs8LR4Pmos="})).unwrap();
    assert_eq!(
        body.data,
        Some(crate::data!({"id": "0f4e4b2a-8c1d-4e55-9a0b-3c2d1e0f9a8b"}))
    );
    // {"k": bytes 01 02 03 04}: valid UTF-8 control bytes become text.
    let body: WorkUnitBody = serde_json::from_value(json!({"data": "oWFrRAECAwQ="})).unwrap();
    assert_eq!(body.data, Some(crate::data!({"k": "\u{1}\u{2}\u{3}\u{4}"})));
    for bad in ["not base64!", "AQID", "gQE=", "oWFrQv/+"] {
        assert!(
            serde_json::from_value::<WorkUnitBody>(json!({ "data": bad })).is_err(),
            "{bad}"
        );
    }
    assert!(serde_json::from_value::<WorkUnitBody>(json!({"data": 3})).is_err());
}

#[test]
fn answers_read_bytes_that_are_not_utf8_as_their_base64_text() {
    use base64::Engine as _;
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(with = "super::data::answer")]
        data: Option<DataMap>,
    }
    let base64 = |bytes: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    // {"t": tuple(1, 2), "b": bytes ff fe, bytes ff as a key: "hi" as bytes}
    let cbor = [
        0xa3, 0x61, b't', 0xd8, 0x80, 0x82, 0x01, 0x02, 0x61, b'b', 0x42, 0xff, 0xfe, 0x41, 0xff,
        0x42, b'h', b'i',
    ];
    let answer: Answer = serde_json::from_value(json!({ "data": base64(&cbor) })).unwrap();
    assert_eq!(
        answer.data,
        Some(crate::data!({"t": [1, 2], "b": "//4=", "/w==": "hi"}))
    );
    // A request's data refuses them, as a server must.
    let refused = serde_json::from_value::<WorkUnitBody>(json!({ "data": base64(&cbor) }));
    assert!(refused.is_err_and(|e| e.to_string().contains("not UTF-8")));
    // Afterwards the same thread's requests still refuse them.
    let _: Answer = serde_json::from_value(json!({ "data": base64(&cbor) })).unwrap();
    let bytes_only = base64(&[0xa1, 0x61, b'b', 0x41, 0xff]);
    assert!(serde_json::from_value::<WorkUnitBody>(json!({ "data": bytes_only })).is_err());
}

#[test]
fn cbor_data_errors_say_what_json_cannot_hold() {
    use base64::Engine as _;
    let decode = |hex: &str| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        super::data::from_cbor_base64(&base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    // Each case is {"t": item}.
    for (item, error) in [
        ("d88001", "CBOR tuple (tag 128) does not wrap an array"),
        ("d880d88080", "CBOR tuple (tag 128) does not wrap an array"),
        ("d82543010203", "CBOR UUID (tag 37) is not 16 bytes"),
        ("d8630b", "unsupported CBOR tag 99"),
        ("f97e00", "CBOR float NaN has no JSON form"),
        ("f97c00", "CBOR float inf has no JSON form"),
        ("a10102", "CBOR map key is not a string"),
        ("42fffe", "CBOR byte string is not UTF-8"),
    ] {
        assert_eq!(
            decode(&format!("a16174{item}")),
            Err(error.to_owned()),
            "{item}"
        );
    }
    assert_eq!(decode("8101"), Err("CBOR data is not a map".to_owned()));
    // Messages say what is wrong in words, not in the decoder's types.
    for (bytes, error) in [
        (
            "a16174",
            "data is not CBOR: it ends inside an item, after 3 bytes",
        ),
        ("", "data is empty, not a CBOR map"),
        ("a1617401ff", "data is not one CBOR item: 1 byte follows it"),
        ("a161741c", "data is not CBOR: malformed at byte 3"),
    ] {
        assert_eq!(decode(bytes), Err(error.to_owned()), "{bytes}");
    }
    // A second map, or any byte, after the map.
    for (trailing, count) in [("a1616b02", 4), ("ff0001", 3)] {
        assert_eq!(
            decode(&format!("a1616b01{trailing}")),
            Err(format!(
                "data is not one CBOR item: {count} bytes follow it"
            )),
            "{trailing}"
        );
    }
    // Integers at the edges of JSON's range; a tuple holding a UUID.
    assert_eq!(
        decode(concat!(
            "a3",
            "616c3b7fffffffffffffff",
            "61751bffffffffffffffff",
            "6174d88081d825500f4e4b2a8c1d4e559a0b3c2d1e0f9a8b",
        )),
        Ok(crate::data!({
            "l": i64::MIN,
            "u": u64::MAX,
            "t": ["0f4e4b2a-8c1d-4e55-9a0b-3c2d1e0f9a8b"],
        }))
    );
}

#[test]
fn cbor_integers_read_as_json_reads_their_digits() {
    use base64::Engine as _;
    // Each case is {"t": item}, against {"t": digits} as JSON: integers
    // past 64 bits, bignums (tags 2 and 3) among them, are the nearest
    // float; past the largest float, both refuse.
    let cases = [
        ("18446744073709551616", "c249010000000000000000"),
        ("-18446744073709551616", "3bffffffffffffffff"),
        ("-18446744073709551617", "c349010000000000000000"),
        ("1267650600228229401496703217721", "c24d10000000000000000000003039"),
        ("170141183460469231731687303715884105728", "c25080000000000000000000000000000000"),
        ("340282366920938463463374607431768211457", "c2510100000000000000000000000000000001"),
        ("10000000000000000000000000000000000000000", "c2511d6329f1c35ca4bfabb9f5610000000000"),
        ("-265613988875874769338781322035779626829233452653394495974574961739092490901302182994384699044001", "c358281fd5863c3eb0469ec21a937a76f3432ffd73d97e447606b683ecf6f6e4a7ae225bfaff1eaaf8b0a0"),
        ("42", "c2440000002a"),
        ("-43", "c3412a"),
        ("89884656743115805365666807213050294962762414131308158973971342756154045415486693752413698006024096935349884403114202125541629105369684531108613657287705365884742938136589844238179474556051429647415148697857438797685859063890851407391008830874765563025951597582513936655578157348020066364210154316532161708032", "c258808000000000000400000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"),
        ("179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792", "c25880fffffffffffffc00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"),
        ("179769313486231590772930519078902473361797697894230657273430081157732675805500963132708477322407536021120113879871393357658789768814416622492847430639474124377767893424865485276302219601246094119453082952085005768838150682342462881473913110540827237163350510684586298239947245938479716304835356329624224137216", "c25881010000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"),
    ];
    for (digits, item) in cases {
        let hex = format!("a16174{item}");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let cbor =
            super::data::from_cbor_base64(&base64::engine::general_purpose::STANDARD.encode(bytes));
        let json = serde_json::from_str::<crate::DataMap>(&format!(r#"{{"t": {digits}}}"#));
        match json {
            Ok(json) => assert_eq!(cbor, Ok(json), "{digits}"),
            Err(e) => assert!(
                cbor.is_err() && e.to_string().contains("out of range"),
                "{digits}: {cbor:?}"
            ),
        }
    }
    // The one exception, the CBOR reader's own: a negative bignum whose
    // 16-byte magnitude is 2^127 or more (-2^128 ..= -2^127 - 1).
    let hex = "a16174c35080000000000000000000000000000000";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(
        super::data::from_cbor_base64(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        Err("integer too large".to_owned())
    );
}

#[test]
fn data_too_deep_for_either_decoder_is_recognised() {
    use base64::Engine as _;
    // {"k": [[…[1]…]]}, `depth` arrays deep, in either form.
    let cbor = |depth: usize| {
        let mut bytes = vec![0xa1, 0x61, b'k'];
        bytes.resize(bytes.len() + depth, 0x81);
        bytes.push(0x01);
        json!({ "data": base64::engine::general_purpose::STANDARD.encode(bytes) })
    };
    let json = |depth: usize| {
        format!(
            r#"{{"data": {{"k": {}1{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let too_deep = |result: serde_json::Result<WorkUnitBody>| {
        result.err().is_some_and(|e| super::data::is_too_deep(&e))
    };
    assert!(too_deep(serde_json::from_value(cbor(300))));
    assert!(too_deep(serde_json::from_str(&cbor(300).to_string())));
    assert!(too_deep(serde_json::from_str(&json(300))));
    // Deep, but readable: the limit is the backends' to check.
    assert!(serde_json::from_value::<WorkUnitBody>(cbor(200)).is_ok());
    assert!(serde_json::from_str::<WorkUnitBody>(&json(100)).is_ok());
    // Other failures are not depth.
    assert!(!too_deep(serde_json::from_value(json!({"data": "gQE="}))));
    assert!(!too_deep(serde_json::from_str(r#"{"data": {"k": [}}"#)));
}

/// `{"k": items, "p": "xx…"}`, padded to `len` bytes as the data limit
/// counts them.
fn padded(items: Vec<serde_json::Value>, len: usize) -> serde_json::Value {
    let counted = |data: &serde_json::Value| match data {
        serde_json::Value::Object(map) => crate::rules::limits::data_len(map),
        _ => unreachable!("a map"),
    };
    let mut data = json!({"k": items, "p": ""});
    let bare = counted(&data);
    data["p"] = json!("x".repeat(len - bare));
    assert_eq!(counted(&data), len);
    data
}

/// The body `{"data": data}` decoded, as JSON and as base64 CBOR.
fn decoded_both_ways(data: &serde_json::Value) -> [serde_json::Result<WorkUnitBody>; 2] {
    use base64::Engine as _;
    let mut cbor = Vec::new();
    ciborium::into_writer(data, &mut cbor).unwrap();
    let cbor = base64::engine::general_purpose::STANDARD.encode(cbor);
    [
        serde_json::from_str(&json!({ "data": data }).to_string()),
        serde_json::from_str(&json!({ "data": cbor }).to_string()),
    ]
}

#[test]
fn data_longer_than_the_limit_is_refused_as_it_is_read() {
    use crate::rules::limits::{checked_data, MAX_DATA_BYTES};
    // Items whose compact JSON the reader counts exactly, nested too.
    let exact = || {
        let items = [
            json!(null),
            json!(true),
            json!(false),
            json!(7),
            json!("ab"),
        ];
        let mut all: Vec<_> = items.iter().cycle().take(50_000).cloned().collect();
        all.push(json!({"m": [[], {}, {"n": [0]}]}));
        all
    };
    for decoded in decoded_both_ways(&padded(exact(), MAX_DATA_BYTES)) {
        let data = decoded.unwrap().data.unwrap();
        assert!(checked_data(data).is_ok());
    }
    for decoded in decoded_both_ways(&padded(exact(), MAX_DATA_BYTES + 1)) {
        let refused = decoded.err().unwrap();
        assert!(super::data::is_too_large(&refused), "{refused}");
        assert!(!super::data::is_too_deep(&refused), "{refused}");
    }
    // Items it counts short (numbers of several bytes, floats, escapes)
    // are read whole at the limit, for the backend's exact measure.
    let short = [json!(-12345), json!(0.5), json!(1e300), json!("\u{1}\"\\")];
    let short: Vec<_> = short.iter().cycle().take(50_000).cloned().collect();
    for decoded in decoded_both_ways(&padded(short, MAX_DATA_BYTES)) {
        let data = decoded.unwrap().data.unwrap();
        assert!(checked_data(data).is_ok());
    }
}

#[test]
fn data_over_the_limit_and_too_deep_is_too_deep() {
    use crate::rules::limits::{MAX_DATA_BYTES, MAX_DATA_DEPTH};
    // Past the budget, then nested: level 1 is the map, so `depth` arrays
    // inside it reach level `depth + 1`.
    let nested = |depth: usize| {
        let mut deep = json!(1);
        for _ in 0..depth {
            deep = json!([deep]);
        }
        let mut data = padded(vec![], MAX_DATA_BYTES + 1);
        data["z"] = deep;
        data
    };
    // As the backends' check answers.
    let checked = |data: serde_json::Value| {
        let serde_json::Value::Object(map) = data else {
            unreachable!("a map")
        };
        crate::rules::limits::checked_data(map).err()
    };
    for decoded in decoded_both_ways(&nested(MAX_DATA_DEPTH)) {
        let refused = decoded.err().unwrap();
        assert!(super::data::is_too_deep(&refused), "{refused}");
    }
    assert!(matches!(
        checked(nested(MAX_DATA_DEPTH)),
        Some(crate::Error::DataTooDeep { .. })
    ));
    for decoded in decoded_both_ways(&nested(MAX_DATA_DEPTH - 1)) {
        let refused = decoded.err().unwrap();
        assert!(super::data::is_too_large(&refused), "{refused}");
    }
    assert!(matches!(
        checked(nested(MAX_DATA_DEPTH - 1)),
        Some(crate::Error::DataTooLarge { .. })
    ));
}

/// A key given twice keeps its last value, as a JSON reader keeps it, and
/// the map is counted as kept: two values that together pass the length
/// limit under one key are one within it, in either form.
#[test]
fn a_key_given_again_replaces_its_entry_and_its_length() {
    use crate::rules::limits::MAX_DATA_BYTES;
    use base64::Engine as _;
    let big = "x".repeat(3 << 20);
    let cbor_body = |entries: Vec<(&str, ciborium::Value)>| {
        let map = ciborium::Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (ciborium::Value::Text(k.into()), v))
                .collect(),
        );
        let mut cbor = Vec::new();
        ciborium::into_writer(&map, &mut cbor).unwrap();
        let cbor = base64::engine::general_purpose::STANDARD.encode(cbor);
        json!({ "data": cbor }).to_string()
    };
    let text = |t: &str| ciborium::Value::Text(t.into());
    let kept = [
        format!(r#"{{"data": {{"s": "{big}", "t": 1, "s": "{big}"}}}}"#),
        cbor_body(vec![("s", text(&big)), ("t", 1.into()), ("s", text(&big))]),
    ];
    for body in kept {
        let body: WorkUnitBody = serde_json::from_str(&body).unwrap();
        let data = body.data.unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data["s"].as_str().map(str::len), Some(big.len()));
        assert_eq!(data["t"], json!(1));
    }
    let nested = format!(r#"{{"data": {{"a": {{"s": "{big}", "s": [1, 2]}}, "b": "{big}"}}}}"#);
    let body: WorkUnitBody = serde_json::from_str(&nested).unwrap();
    assert_eq!(body.data.unwrap()["a"], json!({"s": [1, 2]}));

    let over = "y".repeat(MAX_DATA_BYTES - big.len());
    let refused = [
        format!(r#"{{"data": {{"s": "{big}", "s": "{big}", "t": "{over}"}}}}"#),
        cbor_body(vec![
            ("s", text(&big)),
            ("s", text(&big)),
            ("t", text(&over)),
        ]),
    ];
    for body in refused {
        let refused = serde_json::from_str::<WorkUnitBody>(&body).unwrap_err();
        assert!(super::data::is_too_large(&refused), "{refused}");
    }
}

#[test]
fn work_unit_document_omits_empty_data_and_active_attempt() {
    let doc = WorkUnitDocument {
        head: WorkUnitHead {
            name: "u".into(),
            url: "/u".into(),
            data: Some(DataMap::new()),
            meta: WorkUnitMetaDocument::default(),
        },
        status: WorkUnitStatus::Available,
        work_spec_url: "/s".into(),
        attempts_url: "/u/attempts".into(),
        active_attempt_url: String::new(),
    };
    let v = serde_json::to_value(&doc).unwrap();
    assert!(v.get("data").is_none());
    assert!(v.get("active_attempt_url").is_none());
    assert_eq!(v["status"], "available");
    assert_eq!(v["meta"]["not_before"], "0001-01-01T00:00:00Z");
    let back: WorkUnitDocument = serde_json::from_value(v).unwrap();
    assert_eq!(back.head.data, None);
}

#[test]
fn spec_meta_omits_zero_memory_and_reads_absent_as_zero() {
    let v = serde_json::to_value(WorkSpecMetaDocument::from(WorkSpecMeta::default())).unwrap();
    assert!(v.get("min_memory_gb").is_none());
    assert_eq!(v["weight"], 20);
    assert_eq!(v["interval"], 0);
    assert_eq!(v["next_continuous"], "0001-01-01T00:00:00Z");
    let m: WorkSpecMetaDocument = serde_json::from_value(json!({"priority": 5})).unwrap();
    assert_eq!(m.settable.weight, 0);
    assert_eq!(m.settable.priority, 5);
    assert!(serde_json::from_value::<WorkSpecMetaDocument>(json!({"priority": 1.5})).is_err());
}

#[test]
fn lists_accept_null() {
    let l: WorkUnitList = serde_json::from_value(json!({"work_units": null})).unwrap();
    assert!(l.work_units.is_empty());
    let s: SummaryDocument = serde_json::from_value(json!(null)).unwrap();
    assert!(s.0.is_empty());
    let r: AttemptRequestResult = serde_json::from_value(json!({"attempts": null})).unwrap();
    assert!(r.attempts.is_empty());
}

#[test]
fn summary_and_deleted_keys_are_capitalised() {
    let s = SummaryDocument(vec![SummaryRecordDocument {
        namespace: "prod".into(),
        work_spec: "crawl".into(),
        status: WorkUnitStatus::Pending,
        count: 3,
    }]);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!([{"Namespace": "prod", "WorkSpec": "crawl", "Status": "pending", "Count": 3}])
    );
    assert_eq!(
        serde_json::to_value(DeletedDocument { deleted: 2 }).unwrap(),
        json!({"Deleted": 2})
    );
}

#[test]
fn error_documents_round_trip_typed_errors() {
    let cases = [
        Error::NoWorkSpecName,
        Error::BadWorkSpecName,
        Error::ChangedName,
        Error::LostLease,
        Error::NotPending,
        Error::WrongBackend,
        Error::WorkUnitNotList,
        Error::WorkUnitTooShort,
        Error::BadPriority,
        Error::Gone {
            kind: ObjectKind::WorkUnit,
        },
        Error::NoSuchWorkSpec { name: "s".into() },
        Error::NoSuchWorkUnit { name: "".into() },
        Error::InvalidWorkSpecData("priority".into()),
        Error::BadOutputItem("x".into()),
        Error::TimeOutOfRange("y".into()),
        Error::NameTooLong { limit: 1024 },
        Error::DataTooDeep { limit: 100 },
        Error::DataTooLarge { limit: 4 << 20 },
        Error::ModeTooLong { limit: 1024 },
    ];
    for err in cases {
        let doc = ErrorDocument::from_error(&err);
        let json = serde_json::to_string(&doc).unwrap();
        let back: ErrorDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_error(ObjectKind::WorkUnit), err, "{json}");
    }
    let doc = ErrorDocument::from_error(&Error::NoSuchWorkSpec {
        name: "crawl2".into(),
    });
    assert_eq!(doc.error, "ErrNoSuchWorkSpec");
    assert_eq!(doc.value, "crawl2");
    let v = serde_json::to_value(ErrorDocument::generic("boom")).unwrap();
    assert_eq!(v, json!({"error": "error", "message": "boom"}));
    let other: ErrorDocument = serde_json::from_value(json!({})).unwrap();
    assert!(matches!(
        other.into_error(ObjectKind::WorkUnit),
        Error::Backend(_)
    ));
    // Codes of other servers this crate never sends stay readable.
    for code in [codes::NO_WORK, codes::CANNOT_BECOME_CONTINUOUS] {
        let doc = ErrorDocument {
            error: code.into(),
            ..ErrorDocument::default()
        };
        let err = doc.into_error(ObjectKind::WorkUnit);
        let remote = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<RemoteError>())
            .map(|r| r.code.as_str());
        assert_eq!(remote, Some(code));
    }
}

#[test]
fn queries_parse_form_encoding_and_tolerate_empty_components() {
    let q = parse_work_unit_query("name=a&&name=b%20b&name=f+g&status=available&status=any&previous=-YiBi&previous=z&limit=5&limit=9&x=1").unwrap();
    assert_eq!(q.names, ["a", "b b", "f g"]);
    assert_eq!(
        q.statuses,
        [WorkUnitStatus::Available, WorkUnitStatus::AnyStatus]
    );
    assert_eq!(q.previous_name, "b b");
    assert_eq!(q.limit, 5);
    assert_eq!(parse_work_unit_query("").unwrap(), WorkUnitQuery::all());
    assert_eq!(parse_work_unit_query("limit=-3").unwrap().limit, 0);
    // Empty is no limit, and as the first value it wins.
    assert_eq!(parse_work_unit_query("limit=&limit=2").unwrap().limit, 0);
    for spaced in ["limit=%205", "limit=5+"] {
        assert!(matches!(
            parse_work_unit_query(spaced),
            Err(QueryError::BadLimit(_))
        ));
    }
    assert_eq!(
        parse_work_unit_query("status=Available"),
        Err(QueryError::BadStatus("Available".into()))
    );
    assert_eq!(
        parse_work_unit_query("limit=1.5"),
        Err(QueryError::BadLimit("1.5".into()))
    );
}

/// Form decoding would read a byte that is no UTF-8 as U+FFFD, and so
/// select a unit of that name; every parameter must decode to UTF-8.
#[test]
fn query_parameters_must_be_utf8() {
    for raw in [
        "name=%FF",
        "name=a&previous=%C3",
        "status=%FFany",
        "limit=%FF",
        "x%FF=1",
        "unknown=%E9",
    ] {
        let refused = Err(QueryError::NotUtf8(
            raw.rsplit('&').next().unwrap_or(raw).to_owned(),
        ));
        assert_eq!(parse_work_unit_query(raw), refused, "{raw}");
    }
    assert!(parse_counts_flag("counts=true&x=%FF").is_err());
    assert!(parse_unchecked("check=%FF").is_err());
    // UTF-8 percent-encoded, a space as `+`, and a stray `%` are read as
    // form decoding reads them.
    let q = parse_work_unit_query("name=%C3%A9&name=a+b&name=a%2Bb&name=100%&name=%zz").unwrap();
    assert_eq!(q.names, ["é", "a b", "a+b", "100%", "%zz"]);
    let q = parse_work_unit_query("name=%EF%BF%BD").unwrap();
    assert_eq!(q.names, ["\u{fffd}"]);
}

#[test]
fn query_strings_round_trip() {
    let q = WorkUnitQuery {
        names: vec!["b b".into(), "-c".into(), "é".into()],
        statuses: vec![WorkUnitStatus::Pending],
        previous_name: "-c".into(),
        limit: 7,
    };
    let s = work_unit_query_string(&q);
    assert_eq!(
        s,
        "name=b%20b&name=-c&name=%C3%A9&status=pending&previous=-c&limit=7"
    );
    assert_eq!(parse_work_unit_query(&s).unwrap(), q);
    // A name that reads as another when decoded goes encoded.
    let q = WorkUnitQuery {
        previous_name: "-YiBi".into(),
        ..WorkUnitQuery::default()
    };
    let s = work_unit_query_string(&q);
    assert_eq!(s, "previous=-LVlpQmk");
    assert_eq!(parse_work_unit_query(&s).unwrap(), q);
    assert_eq!(work_unit_query_string(&WorkUnitQuery::all()), "");
    let any = WorkUnitQuery::statuses([WorkUnitStatus::Pending, WorkUnitStatus::AnyStatus]);
    assert_eq!(work_unit_query_string(&any), "");
}

#[test]
fn counts_flag_spellings() {
    for yes in [
        "counts=1",
        "counts=T",
        "counts=yes",
        "counts=On",
        "counts=true",
    ] {
        assert_eq!(parse_counts_flag(yes), Ok(true), "{yes}");
    }
    for no in ["", "counts=0", "counts=false", "counts=maybe", "count=true"] {
        assert_eq!(parse_counts_flag(no), Ok(false), "{no}");
    }
}

#[test]
fn unchecked_reads_are_asked_for_by_a_false_check() {
    assert_eq!(parse_unchecked(UNCHECKED_QUERY), Ok(true));
    for no in ["check=0", "check=F", "check=off", "a=1&check=no"] {
        assert_eq!(parse_unchecked(no), Ok(true), "{no}");
    }
    for yes in ["", "check=true", "check=1", "check", "checks=false"] {
        assert_eq!(parse_unchecked(yes), Ok(false), "{yes}");
    }
}

#[test]
fn whole_documents_read_as_unchecked_ones() {
    let unit = json!({
        "name": "u", "url": "/u", "data": {"k": 1},
        "meta": {"priority": 2.0, "not_before": "0001-01-01T00:00:00Z"},
        "status": "pending", "work_spec_url": "/s", "attempts_url": "/u/attempts",
        "active_attempt_url": "/u/attempt/w/2024-05-06T07:08:09Z"
    });
    let read: UncheckedWorkUnitDocument = serde_json::from_value(unit).unwrap();
    assert_eq!(read.head.name, "u");
    assert_eq!(read.head.meta.priority, 2.0);
    assert_eq!(read.head.data, Some(crate::data!({"k": 1})));
    assert_eq!(read.attempts_url, "/u/attempts");
    let attempt = json!({
        "url": "/a", "work_unit_url": "/u", "worker_url": "/w",
        "start_time": "2024-05-06T07:08:09.25Z", "status": "pending",
        "end_time": "0001-01-01T00:00:00Z", "expiration_time": "2024-05-06T07:23:09.25Z",
        "renew_url": "/a/renew", "expire_url": "/a/expire", "finish_url": "/a/finish",
        "fail_url": "/a/fail", "retry_url": "/a/retry"
    });
    let read: UncheckedAttemptDocument = serde_json::from_value(attempt).unwrap();
    assert_eq!(read.summary.start_time, t("2024-05-06T07:08:09.25Z"));
    assert_eq!(read.data, None);
    assert_eq!(read.actions.retry_url, "/a/retry");
    let unchecked = serde_json::to_value(&read).unwrap();
    assert!(unchecked.get("status").is_none());
    assert!(unchecked.get("expiration_time").is_none());
}

#[test]
fn media_types_match_case_insensitively_with_parameters() {
    assert_eq!(
        json_media_type("Application/JSON; charset=utf-8"),
        Some(MEDIA_TYPE_JSON)
    );
    assert_eq!(json_media_type(MEDIA_TYPE_V1), Some(MEDIA_TYPE_V1));
    assert_eq!(json_media_type("text/html"), None);
}

#[test]
fn attempt_documents_keep_their_field_order() {
    let checked = concat!(
        r#"{"url":"/a","work_unit_url":"/u","worker_url":"/w","#,
        r#""start_time":"2024-05-06T07:08:09.25Z","status":"pending","data":{"k":1},"#,
        r#""end_time":"0001-01-01T00:00:00Z","expiration_time":"2024-05-06T07:23:09.25Z","#,
        r#""renew_url":"/a/renew","expire_url":"/a/expire","finish_url":"/a/finish","#,
        r#""fail_url":"/a/fail","retry_url":"/a/retry"}"#
    );
    let doc: AttemptDocument = serde_json::from_str(checked).unwrap();
    assert_eq!(serde_json::to_string(&doc).unwrap(), checked);
    let unchecked = concat!(
        r#"{"url":"/a","work_unit_url":"/u","worker_url":"/w","#,
        r#""start_time":"2024-05-06T07:08:09.25Z","data":{"k":1},"#,
        r#""renew_url":"/a/renew","expire_url":"/a/expire","finish_url":"/a/finish","#,
        r#""fail_url":"/a/fail","retry_url":"/a/retry"}"#
    );
    let doc: UncheckedAttemptDocument = serde_json::from_str(unchecked).unwrap();
    assert_eq!(serde_json::to_string(&doc).unwrap(), unchecked);
}

#[test]
fn work_unit_documents_keep_their_field_order() {
    let checked = concat!(
        r#"{"name":"u","url":"/u","data":{"k":1},"#,
        r#""meta":{"priority":2.0,"not_before":"0001-01-01T00:00:00Z"},"#,
        r#""status":"pending","work_spec_url":"/s","attempts_url":"/u/attempts","#,
        r#""active_attempt_url":"/u/attempt/w/2024-05-06T07:08:09Z"}"#
    );
    let doc: WorkUnitDocument = serde_json::from_str(checked).unwrap();
    assert_eq!(serde_json::to_string(&doc).unwrap(), checked);
    let unchecked = concat!(
        r#"{"name":"u","url":"/u","data":{"k":1},"#,
        r#""meta":{"priority":2.0,"not_before":"0001-01-01T00:00:00Z"},"#,
        r#""work_spec_url":"/s","attempts_url":"/u/attempts"}"#
    );
    let doc: UncheckedWorkUnitDocument = serde_json::from_str(unchecked).unwrap();
    assert_eq!(serde_json::to_string(&doc).unwrap(), unchecked);
}

#[test]
fn attempt_names_are_read_when_sent_and_never_written_when_absent() {
    let named = json!({
        "url": "/a", "work_unit_url": "/u", "worker_url": "/w",
        "start_time": "2024-05-06T07:08:09Z", "work_spec_url": "/s",
        "work_spec_name": "s", "work_unit_name": "", "worker_name": "w"
    });
    let read: AttemptSummary = serde_json::from_value(named.clone()).unwrap();
    assert!(read.names.all().is_some());
    // The empty name is a name.
    assert_eq!(read.names.work_unit_name.as_deref(), Some(""));
    assert_eq!(serde_json::to_value(&read).unwrap(), named);

    // Another server's summary: no names, and none written back.
    let plain = json!({
        "url": "/a", "work_unit_url": "/u", "worker_url": "/w",
        "start_time": "2024-05-06T07:08:09Z"
    });
    let read: AttemptSummary = serde_json::from_value(plain.clone()).unwrap();
    assert_eq!(read.names, AttemptNames::default());
    assert!(read.names.all().is_none());
    assert_eq!(serde_json::to_value(&read).unwrap(), plain);

    // Some names without the others are not enough to make handles.
    let partial = json!({
        "url": "/a", "work_unit_url": "/u", "worker_url": "/w",
        "start_time": "2024-05-06T07:08:09Z", "work_unit_name": "u"
    });
    let read: AttemptSummary = serde_json::from_value(partial).unwrap();
    assert!(read.names.all().is_none());
}

#[test]
fn a_select_body_carries_a_query_and_reads_absent_fields_as_empty() {
    let query = WorkUnitQuery {
        names: vec!["a b".into(), "-YiBi".into()],
        statuses: vec![WorkUnitStatus::Available, WorkUnitStatus::Delayed],
        previous_name: "-".into(),
        limit: 3,
    };
    let body = WorkUnitSelectBody::new(SelectAction::Delete, &query);
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(
        json,
        json!({"action": "delete", "name": ["a b", "-YiBi"],
               "status": ["available", "delayed"], "previous": "-", "limit": 3})
    );
    let back: WorkUnitSelectBody = serde_json::from_value(json).unwrap();
    assert_eq!(back.into_query().unwrap(), query);

    let empty: WorkUnitSelectBody = serde_json::from_value(json!({"name": null})).unwrap();
    assert_eq!(empty.action, SelectAction::List);
    assert_eq!(empty.into_query().unwrap(), WorkUnitQuery::all());
    let unlimited: WorkUnitSelectBody = serde_json::from_value(json!({"limit": -4})).unwrap();
    assert_eq!(unlimited.into_query().unwrap().limit, 0);
    let bad: WorkUnitSelectBody = serde_json::from_value(json!({"status": ["Pending"]})).unwrap();
    assert_eq!(
        bad.into_query(),
        Err(QueryError::BadStatus("Pending".into()))
    );
}

#[test]
fn an_available_memory_json_cannot_carry_is_sent_as_one_selecting_the_same_specs() {
    let sent = |gb: f64| {
        let body = AttemptRequestBody {
            available_gb: gb,
            ..AttemptRequestBody::default()
        };
        serde_json::to_value(body).unwrap()["available_gb"].clone()
    };
    assert_eq!(sent(f64::NAN), json!(0.0));
    assert_eq!(sent(f64::NEG_INFINITY), json!(0.0));
    assert_eq!(sent(f64::INFINITY), json!(f64::MAX));
    assert_eq!(sent(2.5), json!(2.5));
}

#[test]
fn statuses_are_sent_once_and_not_at_all_when_any_is_among_them() {
    use super::query::sent_statuses;
    use WorkUnitStatus::*;
    let sent = |statuses: &[WorkUnitStatus]| {
        sent_statuses(&WorkUnitQuery::statuses(statuses.iter().copied()))
    };
    assert_eq!(sent(&[Pending, Failed, Pending]), [Pending, Failed]);
    assert_eq!(sent(&[Pending, AnyStatus]), []);
    assert_eq!(sent(&[AnyStatus]), []);
    assert_eq!(sent(&[]), []);
}

#[test]
fn whole_documents_require_what_their_unchecked_forms_lack() {
    let unit = json!({"name": "u", "url": "/u", "meta": {}});
    let missing = serde_json::from_value::<WorkUnitDocument>(unit.clone()).unwrap_err();
    assert!(
        missing.to_string().contains("missing field `status`"),
        "{missing}"
    );
    assert!(serde_json::from_value::<UncheckedWorkUnitDocument>(unit).is_ok());
    let attempt = json!({"url": "/a", "start_time": "2024-05-06T07:08:09Z", "status": "pending"});
    let missing = serde_json::from_value::<AttemptDocument>(attempt.clone()).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("missing field `expiration_time`"),
        "{missing}"
    );
    assert!(serde_json::from_value::<UncheckedAttemptDocument>(attempt.clone()).is_ok());
    assert!(serde_json::from_value::<AttemptSummary>(attempt).is_ok());
    // A meta is required of both unit documents, a start of every attempt.
    let headless = json!({"name": "u", "status": "available"});
    assert!(serde_json::from_value::<UncheckedWorkUnitDocument>(headless).is_err());
    let unstarted = json!({"url": "/a"});
    assert!(serde_json::from_value::<AttemptSummary>(unstarted).is_err());
}

/// `body` with every field it writes for its default value, and `more`,
/// set to `null`.
fn all_null<T: serde::Serialize + Default>(more: &[&str]) -> serde_json::Value {
    let mut fields = serde_json::to_value(T::default()).unwrap();
    let fields = fields.as_object_mut().unwrap();
    for key in more {
        fields.insert((*key).to_owned(), serde_json::Value::Null);
    }
    fields
        .values_mut()
        .for_each(|v| *v = serde_json::Value::Null);
    serde_json::Value::Object(fields.clone())
}

/// As the reference decoder reads it, `null` in any field of a request
/// body is the field's zero value: the empty name, false, zero.
#[test]
fn null_fields_of_request_bodies_read_as_zero() {
    fn check<T>(more: &[&str])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Default + PartialEq + std::fmt::Debug,
    {
        let body = all_null::<T>(more);
        let read: T =
            serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(read, T::default(), "{body}");
    }
    check::<NamespaceBody>(&["name"]);
    check::<WorkSpecBody>(&["data"]);
    check::<WorkUnitBody>(&["name", "data", "meta"]);
    check::<WorkSpecMetaBody>(&["min_memory_gb"]);
    check::<WorkUnitUpdateBody>(&["active_attempt_url", "meta"]);
    check::<AttemptActionBody>(&["data", "extend_duration", "delay"]);
    check::<WorkerUpdateBody>(&["parent", "parent_url", "active", "mode"]);
    check::<AttemptRequestBody>(&["available_gb", "lifetime", "number_of_work_units"]);
    check::<MakeAttemptBody>(&["work_spec", "work_unit", "work_unit_url", "lifetime"]);
    let select = json!({"action": "list", "name": null, "status": null, "previous": null,
                        "limit": null, "meta": null});
    let read: WorkUnitSelectBody = serde_json::from_value(select).unwrap();
    assert_eq!(read, WorkUnitSelectBody::default());
    let meta: WorkUnitMetaDocument =
        serde_json::from_value(json!({"priority": null, "not_before": null})).unwrap();
    assert_eq!(meta, WorkUnitMetaDocument::default());
}

#[test]
fn error_documents_read_as_the_reference_client_reads_them() {
    let read = |text: &str| -> ErrorDocument {
        from_json_slice_lossy(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    };
    let not_pending = |text: &str| read(text).into_error(ObjectKind::Attempt);
    for text in [
        r#"{"error": "ErrNotPending", "message": null}"#,
        r#"{"error": "ErrNotPending", "message": "m", "stack": null, "value": null}"#,
        r#"{"error": "ErrNotPending", "message": "\ud800"}"#,
        r#"{"error": "ErrLostLease", "message": "m", "error": "ErrNotPending"}"#,
        r#"{"error": "ErrNotPending", "error": null, "other": [1, {"x": null}]}"#,
    ] {
        assert_eq!(not_pending(text), Error::NotPending, "{text}");
    }
    let named = read(r#"{"error": "ErrNoSuchWorkSpec", "value": "a", "value": "b"}"#);
    assert_eq!(
        named.into_error(ObjectKind::WorkSpec),
        Error::NoSuchWorkSpec { name: "b".into() }
    );
    // Not a document: refused, so the answer is taken as a plain failure.
    for text in [r#"["ErrNotPending"]"#, r#"{"error": 5}"#, "null"] {
        assert!(
            serde_json::from_str::<ErrorDocument>(text).is_err(),
            "{text}"
        );
    }
}
