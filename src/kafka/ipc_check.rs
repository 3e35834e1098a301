//! Checks an Arrow IPC stream's framing against its own size before arrow-ipc reads it.
//!
//! A Kafka topic can hold anything, from any producer. arrow-ipc trusts the lengths a stream
//! declares: it allocates a message's metadata and body at their declared sizes before reading
//! them (a 64-byte value can ask for exabytes), slices buffers at declared offsets (a panic when
//! they lie), and a record batch may declare any row count for columns without buffers (a
//! 200-byte message of a `Null` column claiming 2^40 rows). So every length is checked here,
//! against the bytes actually present, before arrow-ipc sees the value:
//!
//! - each message: continuation marker (or the legacy bare length), metadata length within the
//!   remaining bytes, the flatbuffer `Message` accepted by arrow-ipc's verifier
//!   ([`arrow_ipc::root_as_message`]), body length within the remaining bytes;
//! - each record batch (and dictionary batch): every buffer's offset + length within the body,
//!   variadic buffer counts within the buffer count, every field node's length and null count
//!   sane;
//! - row counts: a message may hold at most [`row_budget`] rows in all its batches, and no field
//!   node may be longer. The budget is one row per byte of the message, but never less than
//!   [`MAX_UNBACKED_ROWS`]: rows of columns that need buffers are backed by buffer bytes anyway
//!   (arrow validates that when it builds the arrays), while columns without buffers (`Null`,
//!   zero-width types, run-end encoded) cost nothing on the wire, so only this cap bounds them.
//!
//! What passes costs memory in proportion to the message; what does not is an `_error` row.

use arrow_ipc::{Message, MessageHeader, RecordBatch as IpcBatch};

/// The most rows a message may declare beyond one per byte of the message: a batch of columns
/// without buffers (all-`Null`, say) may hold up to this many rows (2^20, about a million).
pub const MAX_UNBACKED_ROWS: u64 = 1 << 20;

/// IPC's continuation marker, before every message's metadata length (since Arrow 0.15).
const CONTINUATION: u32 = 0xFFFF_FFFF;

/// The most rows (summed over its batches) and the longest field node an IPC message of `len`
/// bytes may declare.
pub fn row_budget(len: usize) -> u64 {
    (len as u64).max(MAX_UNBACKED_ROWS)
}

/// Walks every message of the stream in `payload`, checking the lengths it declares against the
/// bytes present. `Ok` means arrow-ipc may read it without allocating more than the payload's
/// size for framing and without row counts beyond [`row_budget`]; it may still reject it.
pub fn check_stream(payload: &[u8]) -> Result<(), String> {
    let budget = row_budget(payload.len());
    let mut rows = 0u64;
    let mut pos = 0usize;
    let mut index = 0usize;
    loop {
        let rest = &payload[pos..];
        if rest.is_empty() {
            return Ok(()); // a stream may end without the end-of-stream marker
        }
        let (meta_len, prefix) = meta_len(rest).map_err(|e| format!("IPC message {index} at byte {pos}: {e}"))?;
        if meta_len == 0 {
            return Ok(()); // end-of-stream marker
        }
        let at = |e: String| format!("IPC message {index} at byte {pos}: {e}");
        let after_prefix = &rest[prefix..];
        if meta_len > after_prefix.len() {
            return Err(at(format!(
                "metadata length {meta_len} exceeds the {} bytes left in the value",
                after_prefix.len()
            )));
        }
        let message = arrow_ipc::root_as_message(&after_prefix[..meta_len])
            .map_err(|e| at(format!("metadata is not an Arrow IPC message: {e}")))?;
        let body_len = usize::try_from(message.bodyLength())
            .map_err(|_| at(format!("negative body length {}", message.bodyLength())))?;
        let left = after_prefix.len() - meta_len;
        if body_len > left {
            return Err(at(format!("body length {body_len} exceeds the {left} bytes left in the value")));
        }
        check_message(&message, index, body_len, budget, &mut rows).map_err(at)?;
        pos += prefix + meta_len + body_len;
        index += 1;
    }
}

/// The metadata length and how many prefix bytes it took (8 with the continuation marker, 4
/// in the legacy format).
fn meta_len(rest: &[u8]) -> Result<(usize, usize), String> {
    let word = |b: &[u8]| b.get(..4).and_then(|w| <[u8; 4]>::try_from(w).ok());
    let first = word(rest).ok_or_else(|| format!("{} bytes are too few for a length prefix", rest.len()))?;
    let (len, prefix) = if u32::from_le_bytes(first) == CONTINUATION {
        let second = word(&rest[4..]).ok_or("the continuation marker is not followed by a length")?;
        (i32::from_le_bytes(second), 8)
    } else {
        (i32::from_le_bytes(first), 4)
    };
    let len = usize::try_from(len).map_err(|_| format!("negative metadata length {len}"))?;
    Ok((len, prefix))
}

fn check_message(
    message: &Message<'_>,
    index: usize,
    body_len: usize,
    budget: u64,
    rows: &mut u64,
) -> Result<(), String> {
    let header = message.header_type();
    match (index, header) {
        (0, MessageHeader::Schema) => Ok(()),
        (0, h) => Err(format!("the stream starts with a {h:?} message, not a schema")),
        (_, MessageHeader::RecordBatch) => {
            let batch = message.header_as_record_batch().ok_or("record batch header missing")?;
            let length = u64::try_from(batch.length()).map_err(|_| format!("negative row count {}", batch.length()))?;
            *rows = rows.saturating_add(length);
            if *rows > budget {
                return Err(format!(
                    "declares {} rows, more than the {budget} a value of this size may hold (one per byte, at \
                     least {MAX_UNBACKED_ROWS})",
                    *rows
                ));
            }
            check_batch(&batch, body_len, budget)
        }
        (_, MessageHeader::DictionaryBatch) => {
            let dict = message.header_as_dictionary_batch().ok_or("dictionary batch header missing")?;
            let data = dict.data().ok_or("dictionary batch without data")?;
            let length = u64::try_from(data.length()).map_err(|_| format!("negative row count {}", data.length()))?;
            if length > budget {
                return Err(format!("dictionary declares {length} values, more than the budget of {budget}"));
            }
            check_batch(&data, body_len, budget)
        }
        (_, h) => Err(format!("unexpected {h:?} message in a stream")),
    }
}

/// Buffers within the body, node lengths within the budget, variadic counts within the buffers.
fn check_batch(batch: &IpcBatch<'_>, body_len: usize, budget: u64) -> Result<(), String> {
    let buffers = batch.buffers().map(|b| b.len()).unwrap_or(0);
    for (i, b) in batch.buffers().into_iter().flatten().enumerate() {
        let (offset, length) = (b.offset(), b.length());
        let end = u64::try_from(offset)
            .ok()
            .zip(u64::try_from(length).ok())
            .and_then(|(o, l)| o.checked_add(l))
            .filter(|&end| end <= body_len as u64);
        if end.is_none() {
            return Err(format!("buffer {i} (offset {offset}, length {length}) lies outside the {body_len}-byte body"));
        }
    }
    for (i, n) in batch.nodes().into_iter().flatten().enumerate() {
        let (length, nulls) = (n.length(), n.null_count());
        if !(0..=budget as i64).contains(&length) {
            return Err(format!("field node {i} declares {length} values (budget {budget})"));
        }
        if !(0..=length).contains(&nulls) {
            return Err(format!("field node {i} declares {nulls} nulls in {length} values"));
        }
    }
    let mut variadic = 0u64;
    for c in batch.variadicBufferCounts().into_iter().flatten() {
        variadic = variadic.saturating_add(u64::try_from(c).map_err(|_| format!("negative variadic count {c}"))?);
    }
    if variadic > buffers as u64 {
        return Err(format!("variadic buffer counts add up to {variadic}, but the batch has {buffers} buffers"));
    }
    Ok(())
}
