//! Kafka message values through the consumer's batch builder, in every consumable format.
//!
//! Input: one format byte (low 2 bits: json, arrow, raw, binary; bit 2: give `arrow` a fixed
//! schema), then messages separated by `SEP`. Each message starts with a control byte (bit 0:
//! tombstone, bit 1: has a key, bits 2-4: one header, keys including non-UTF-8 ones) and the rest
//! is its value. Asserts the consumer's rules: every message is at least one row, rows keep their
//! message's offset and key, in order, an error row is alone, and non-`arrow` formats give
//! exactly one row per message. Panics inside arrow-ipc, which the consumer catches, are
//! tolerated (see `tolerate_guarded_panics`); any other panic is a crash.
#![no_main]

use std::sync::{Arc, Once};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::Array;
use arrow_schema::{DataType, Field, Schema};
use libfuzzer_sys::fuzz_target;
use pktstream::kafka::headers::RawHeaders;
use pktstream::kafka::messages::{in_ipc_guard, MessageBatch, MessageRef};
use pktstream::kafka::{Format, TsUnit};
use pktstream::schema::SchemaOptions;

const SEP: &[u8] = b"\xff~\xff";
const HEADER_KEYS: [&[u8]; 4] = [b"link_type", b"wirelen", b"\xff\xfe", b"link_type\xc3("];

fn split(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&data[..i]);
        data = &data[i + SEP.len()..];
    }
    out.push(data);
    out
}

/// libFuzzer's panic hook aborts on every panic, even a caught one. A panic inside arrow-ipc is
/// caught by the consumer and becomes an `_error` row (the row checks below still run), so only
/// panics outside that guard are let through to the aborting hook.
fn tolerate_guarded_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !in_ipc_guard() {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_guarded_panics();
    let Some((&sel, rest)) = data.split_first() else { return };
    let format = [Format::Json, Format::Arrow, Format::Raw, Format::Binary][usize::from(sel & 3)];
    let schema = (sel & 4 != 0).then(|| Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])));
    let mut batch = MessageBatch::new(format, schema, &SchemaOptions::default(), TsUnit::Micros).unwrap();
    // Every header as a `_headers` column too: hostile keys (not UTF-8) and values must not panic.
    if sel & 8 != 0 {
        batch = batch.with_headers();
    }
    let messages = split(rest);
    let keys: Vec<Vec<u8>> = (0..messages.len()).map(|i| format!("key{i}").into_bytes()).collect();
    for (i, m) in messages.iter().enumerate() {
        let (ctl, value) = m.split_first().map_or((0, &[][..]), |(c, v)| (*c, v));
        let mut headers = RawHeaders::default();
        let key = HEADER_KEYS[usize::from(ctl >> 2) % HEADER_KEYS.len()];
        let header_value = value.get(..value.len().min(4));
        headers.apply(key, header_value);
        let all = [(key, header_value), (value, None)];
        batch
            .push(&MessageRef {
                topic: "fuzz",
                partition: 0,
                offset: i as i64,
                timestamp_ms: Some(i as i64),
                key: (ctl & 2 != 0).then_some(keys[i].as_slice()),
                payload: (ctl & 1 == 0).then_some(value),
                link_type: headers.link_type,
                wirelen: headers.wirelen,
                headers: Some(&all[..usize::from(ctl >> 4) % 3]),
            })
            .unwrap();
    }
    let out = batch.finish().unwrap();
    let offsets = out.column_by_name("_offset").unwrap().as_primitive::<Int64Type>();
    let errors = out.column_by_name("_error").unwrap();
    let mut rows_of = vec![0usize; messages.len()];
    let mut last = 0;
    for r in 0..out.num_rows() {
        let o = offsets.value(r);
        assert!(o >= last, "rows out of message order");
        last = o;
        rows_of[o as usize] += 1;
        if errors.is_valid(r) {
            assert_eq!(rows_of[o as usize], 1, "an error message has several rows");
        }
    }
    assert!(rows_of.iter().all(|&n| n >= 1), "a message without a row");
    if format != Format::Arrow {
        assert_eq!(out.num_rows(), messages.len());
    }
});
