//! Hostile values: whatever bytes a message holds, it is one row (an `arrow` value: its rows),
//! with its own offset and key, `_error` set when it cannot be decoded, and quickly.

use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int32Array, Int64Array, NullArray};
use arrow_ipc::writer::StreamWriter;

use super::*;
use crate::kafka::meta::BinaryColumn;

fn msg<'a>(offset: i64, key: Option<&'a [u8]>, payload: Option<&'a [u8]>) -> MessageRef<'a> {
    MessageRef {
        topic: "t",
        partition: 3,
        offset,
        timestamp_ms: Some(1000 + offset),
        key,
        payload,
        link_type: None,
        wirelen: None,
        headers: None,
    }
}

fn batch_of(format: Format, schema: Option<SchemaRef>) -> MessageBatch {
    MessageBatch::new(format, schema, &SchemaOptions::default(), TsUnit::Micros).unwrap()
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut w = StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
    w.into_inner().unwrap()
}

fn int_batch(values: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
}

/// Replaces every little-endian i64 `from` in `bytes` with `to`; returns how many.
fn patch_i64(bytes: &mut [u8], from: i64, to: i64) -> usize {
    let (f, t) = (from.to_le_bytes(), to.to_le_bytes());
    let mut n = 0;
    for i in 0..bytes.len().saturating_sub(7) {
        if bytes[i..i + 8] == f {
            bytes[i..i + 8].copy_from_slice(&t);
            n += 1;
        }
    }
    n
}

/// Pushes each payload as its own message (offset = index, key = the index as text) and checks
/// the rules: every message has a row, in order, with its own offset, key and partition; the
/// rows of a message with `_error` number exactly one. Returns the batch and per-row errors.
fn run(format: Format, schema: Option<SchemaRef>, payloads: &[Option<&[u8]>]) -> (RecordBatch, Vec<Option<String>>) {
    let started = Instant::now();
    let mut b = batch_of(format, schema);
    let keys: Vec<String> = (0..payloads.len()).map(|i| format!("k{i}")).collect();
    for (i, p) in payloads.iter().enumerate() {
        b.push(&msg(i as i64, Some(keys[i].as_bytes()), *p)).unwrap();
    }
    let batch = b.finish().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let offsets = batch.column_by_name("_offset").unwrap().as_primitive::<Int64Type>();
    let key = batch.column_by_name("_key").unwrap().as_binary::<i32>();
    let part = batch.column_by_name("_partition").unwrap().as_primitive::<arrow_array::types::Int32Type>();
    let err = batch.column_by_name("_error").unwrap().as_string::<i32>();
    let mut seen = vec![0usize; payloads.len()];
    let mut last = -1;
    for r in 0..batch.num_rows() {
        let o = offsets.value(r);
        assert!(o >= last, "rows out of order");
        last = o;
        seen[o as usize] += 1;
        assert_eq!(key.value(r), keys[o as usize].as_bytes(), "row {r} has another message's key");
        assert_eq!(part.value(r), 3);
        if err.is_valid(r) {
            assert!(seen[o as usize] == 1, "an error message with more than one row");
        }
    }
    assert!(seen.iter().all(|&n| n >= 1), "a message without a row: {seen:?}");
    let errors = (0..batch.num_rows()).map(|r| err.is_valid(r).then(|| err.value(r).to_string())).collect();
    (batch, errors)
}

#[test]
fn a_null_column_declaring_2_pow_40_rows_is_one_error_row_at_once() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Null, true)]));
    let valid = RecordBatch::try_new(schema, vec![Arc::new(NullArray::new(77_777))]).unwrap();
    let mut lying = ipc(&valid);
    assert!(patch_i64(&mut lying, 77_777, 1 << 40) >= 2, "batch length and node length");
    let started = Instant::now();
    let (batch, errors) = run(Format::Arrow, None, &[Some(&lying)]);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(batch.num_rows(), 1);
    assert!(errors[0].as_deref().unwrap().contains("rows"), "{errors:?}");
    // Up to the cap, rows of a buffer-less column are fine.
    let ok = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Null, true)])),
        vec![Arc::new(NullArray::new(ipc_check::MAX_UNBACKED_ROWS as usize))],
    )
    .unwrap();
    let (batch, errors) = run(Format::Arrow, None, &[Some(&ipc(&ok))]);
    assert_eq!(batch.num_rows(), ipc_check::MAX_UNBACKED_ROWS as usize);
    assert!(errors.iter().all(Option::is_none));
}

#[test]
fn lying_lengths_and_offsets_are_error_rows() {
    let schema =
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false), Field::new("b", DataType::Int64, false)]));
    let two = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int32Array::from((0..1024).collect::<Vec<i32>>())), Arc::new(Int64Array::from(vec![7i64; 1024]))],
    )
    .unwrap();
    let good = ipc(&two);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // The schema message's metadata length (after the continuation marker).
    let mut meta = good.clone();
    meta[4..8].copy_from_slice(&0x7fff_fff0i32.to_le_bytes());
    cases.push(("metadata length", meta));
    let mut neg = good.clone();
    neg[4..8].copy_from_slice(&(-8i32).to_le_bytes());
    cases.push(("negative metadata length", neg));
    // The batch's body length (4096 + 8192 bytes: buffers are 64-byte aligned).
    let mut body = good.clone();
    assert!(patch_i64(&mut body, 12_288, 1 << 50) >= 1);
    cases.push(("body length", body));
    let mut body = good.clone();
    assert!(patch_i64(&mut body, 12_288, -1) >= 1);
    cases.push(("negative body length", body));
    // Column b's buffer offset (and a's length): 4096.
    let mut offset = good.clone();
    assert!(patch_i64(&mut offset, 4096, 1 << 40) >= 2);
    cases.push(("buffer offset", offset));
    let mut offset = good.clone();
    assert!(patch_i64(&mut offset, 4096, 12_000) >= 2);
    cases.push(("buffer past the body", offset));
    // Node lengths: 1024 rows.
    let mut rows = good.clone();
    assert!(patch_i64(&mut rows, 1024, 1 << 40) >= 3);
    cases.push(("row count", rows));
    let mut rows = good.clone();
    assert!(patch_i64(&mut rows, 1024, 2048) >= 3);
    cases.push(("row count beyond the buffers", rows));
    let payloads: Vec<Option<&[u8]>> =
        cases.iter().map(|(_, c)| Some(c.as_slice())).chain([Some(good.as_slice())]).collect();
    let (batch, errors) = run(Format::Arrow, None, &payloads);
    assert_eq!(batch.num_rows(), cases.len() + 1024);
    for (i, (what, _)) in cases.iter().enumerate() {
        assert!(errors[i].is_some(), "{what}: not an error");
    }
    assert!(errors[cases.len()..].iter().all(Option::is_none));
    let b = batch.column_by_name("b").unwrap().as_primitive::<Int64Type>();
    assert_eq!(b.value(cases.len()), 7);
}

#[test]
fn every_truncation_is_one_row() {
    let good = ipc(&int_batch(&[1, 2, 3]));
    let cuts: Vec<&[u8]> = (0..good.len()).map(|n| &good[..n]).collect();
    let payloads: Vec<Option<&[u8]>> = cuts.iter().map(|c| Some(*c)).collect();
    let (batch, errors) = run(Format::Arrow, None, &payloads);
    // Only the cut right after the record batch (before the end-of-stream marker) is whole.
    let whole_rows = errors.iter().filter(|e| e.is_none()).count();
    assert_eq!(whole_rows, 3, "{errors:?}");
    assert_eq!(batch.num_rows(), good.len() - 1 + 3);
}

/// xorshift64*: deterministic bytes without a dependency.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_bytes_are_error_rows_fast() {
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let good = ipc(&int_batch(&[5]));
    let mut values: Vec<Vec<u8>> = Vec::new();
    for i in 0..3000 {
        let len = (next() % 200) as usize;
        let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match i % 4 {
            // Plausible framing, random lengths and flatbuffer.
            0 if v.len() >= 8 => v[..4].copy_from_slice(&[0xff; 4]),
            // A valid stream with a few random bytes flipped.
            1 => {
                v = good.clone();
                for _ in 0..3 {
                    let at = (next() as usize) % v.len();
                    v[at] = next() as u8;
                }
            }
            _ => {}
        }
        values.push(v);
    }
    let payloads: Vec<Option<&[u8]>> = values.iter().map(|v| Some(v.as_slice())).collect();
    let started = Instant::now();
    let (batch, errors) = run(Format::Arrow, Some(int_batch(&[]).schema()), &payloads);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(batch.num_rows() >= values.len());
    assert!(errors.iter().filter(|e| e.is_some()).count() > values.len() / 2);
    let (_, errors) = run(Format::Json, None, &payloads);
    assert!(errors.iter().all(Option::is_some));
    let (batch, _) = run(Format::Raw, None, &payloads);
    assert_eq!(batch.num_rows(), values.len());
    let (batch, errors) = run(Format::Binary, None, &payloads);
    assert_eq!(batch.num_rows(), values.len());
    assert!(errors.iter().all(Option::is_none));
}

#[test]
fn a_corrupt_first_message_does_not_fix_the_topic_schema() {
    let good = ipc(&int_batch(&[1, 2]));
    let nulls = ipc(&RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("z", DataType::Null, true)])),
        vec![Arc::new(NullArray::new(77_778))],
    )
    .unwrap());
    let mut corrupt = nulls.clone();
    assert!(patch_i64(&mut corrupt, 77_778, 1 << 40) >= 2);
    let other = ipc(&RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true), Field::new("y", DataType::Int32, true)])),
        vec![Arc::new(Int32Array::from(vec![1])), Arc::new(Int32Array::from(vec![2]))],
    )
    .unwrap());
    let empty = {
        let b = int_batch(&[]);
        ipc(&b)
    };
    let (batch, errors) = run(Format::Arrow, None, &[Some(&corrupt), Some(&empty), Some(&good), Some(&other)]);
    assert_eq!(batch.num_rows(), 5);
    assert_eq!(batch.schema().field(0).name(), "a");
    assert!(errors[0].is_some() && errors[1].as_deref().unwrap().contains("no rows"));
    assert!(errors[2].is_none() && errors[3].is_none());
    assert!(errors[4].as_deref().unwrap().contains("differs"));
}

#[test]
fn a_big_key_on_many_rows_is_an_error_row() {
    let rows = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Null, true)])),
        vec![Arc::new(NullArray::new(100_000))],
    )
    .unwrap();
    let value = ipc(&rows);
    let key = vec![7u8; 1 << 20];
    let mut b = batch_of(Format::Arrow, None);
    b.push(&msg(0, Some(&key), Some(&value))).unwrap();
    b.push(&msg(1, Some(b"small"), Some(&value))).unwrap();
    let batch = b.finish().unwrap();
    assert_eq!(batch.num_rows(), 100_001);
    let err = batch.column_by_name("_error").unwrap();
    assert!(err.is_valid(0) && err.is_null(1));
}

#[test]
fn json_values_must_be_exactly_one_object() {
    let schema =
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("f", DataType::Float64, true)]));
    let mut deep = b"{\"a\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    let mut deep_ok = b"{\"x\":".to_vec();
    deep_ok.extend(std::iter::repeat_n(b'[', 300));
    deep_ok.extend(std::iter::repeat_n(b']', 300));
    deep_ok.extend_from_slice(b",\"a\":9}");
    let long_digits = format!("{{\"a\":{},\"f\":{}}}", "9".repeat(10_000), "9".repeat(10_000));
    let cases: Vec<(Option<&[u8]>, Option<i64>)> = vec![
        (Some(b"{\"a\":1}"), Some(1)),
        (Some(b"{\"a\":1}{\"a\":2}"), None),
        (Some(b"{\"a\":1}\n{\"a\":2}"), None),
        (Some(b""), None),
        (None, None),
        (Some(b"   \n"), None),
        (Some(b"[]"), None),
        (Some(b"[{\"a\":1}]"), None),
        (Some(b"42"), None),
        (Some(b"null"), None),
        (Some(&deep), None),
        (Some(&deep_ok), Some(9)),
        (Some(b"{\"a\":1e999999}"), None),
        (Some(b"{\"f\":1e999999,\"a\":4}"), Some(4)),
        (Some(long_digits.as_bytes()), None),
        (Some(b"{\"a\":\"\xff\xfe\"}"), None),
        (Some(b"{\"a\":5}"), Some(5)),
    ];
    let payloads: Vec<Option<&[u8]>> = cases.iter().map(|c| c.0).collect();
    let (batch, errors) = run(Format::Json, Some(schema), &payloads);
    assert_eq!(batch.num_rows(), cases.len());
    let a = batch.column(0).as_primitive::<Int64Type>();
    for (i, (p, want)) in cases.iter().enumerate() {
        let shown = String::from_utf8_lossy(p.unwrap_or_default()).chars().take(40).collect::<String>();
        assert_eq!(a.is_valid(i).then(|| a.value(i)), *want, "row {i}: {shown}");
        assert_eq!(errors[i].is_none(), want.is_some(), "row {i}: {shown}: {:?}", errors[i]);
    }
}

#[test]
fn tombstones_are_rows_with_their_own_offset_and_key() {
    let good = ipc(&int_batch(&[1]));
    for (format, value, error) in [
        (Format::Json, &b"{\"a\":1}"[..], true),
        (Format::Arrow, &good[..], true),
        (Format::Raw, &[0u8; 60][..], true),
        (Format::Binary, &b"x"[..], false),
    ] {
        let schema = (format == Format::Json).then(|| int_batch(&[]).schema());
        let (batch, errors) = run(format, schema, &[Some(value), None, Some(b""), Some(value)]);
        assert_eq!(batch.num_rows(), 4, "{format:?}");
        assert_eq!(errors[1].is_some(), error, "{format:?}: {errors:?}");
        assert_eq!(errors[2].is_some(), error, "{format:?}: {errors:?}");
        if format == Format::Binary {
            let v = batch.column(0).as_binary::<i32>();
            assert!(v.is_null(1) && v.is_valid(2) && v.value(2).is_empty());
        }
    }
}

#[test]
fn a_batch_column_past_2_gib_is_out_of_memory_not_a_panic() {
    let mut c = BinaryColumn::default();
    let big = vec![0u8; 1024];
    assert!(matches!(c.reserve(Some(&big), 3_000_000, "key"), Err(KafkaError::OutOfMemory(_))));
    assert!(matches!(c.reserve(Some(&big), usize::MAX, "key"), Err(KafkaError::OutOfMemory(_))));
    c.reserve(Some(&big), 2, "key").unwrap();
    c.append(Some(&big), 2);
    assert_eq!(c.finish_binary().unwrap().len(), 2);
}
