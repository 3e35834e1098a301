//! Offsets for times: which offset a reader starts (or stops) at to begin at a wall-clock time.
//!
//! Kafka answers "the earliest offset whose timestamp is at or after T" per partition (the
//! ListOffsets request, librdkafka's `rd_kafka_offsets_for_times`), from the broker's time
//! index, without reading messages. Spark's Kafka source builds `startingOffsetsByTimestamp`,
//! `startingTimestamp` and their `ending...` twins on it, and so does the `pktstream` Spark
//! source. This file holds the pure parts: checking the request (a negative time would be read
//! by the broker as "latest" (-1) or "earliest" (-2), silently, so it is refused) and reading
//! librdkafka's answer, where no such message is `Offset::End` (-1), returned as `None`.

use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::error::{KafkaError, Result};

/// The request list: each (topic, partition) with its time (ms since the epoch) in the offset
/// field, as librdkafka expects. Times must be >= 0.
pub fn request(timestamps: &[(String, i32, i64)]) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(timestamps.len());
    for (t, p, ms) in timestamps {
        if *ms < 0 {
            return Err(KafkaError::invalid(format!(
                "timestamp {ms} of {t} [{p}] is negative: give milliseconds since the epoch (>= 0)"
            )));
        }
        if *p < 0 {
            return Err(KafkaError::invalid(format!("partition {p} of {t} is invalid")));
        }
        tpl.add_partition_offset(t, *p, Offset::Offset(*ms))
            .map_err(|e| KafkaError::from_rdkafka("offsets for times", &e))?;
    }
    Ok(tpl)
}

/// One partition's answer: `Some(offset)` of the earliest message at or after the time, `None`
/// when there is none (librdkafka's `Offset::End`, -1: every message is older, or none).
pub fn answer(topic: &str, partition: i32, offset: Offset) -> Result<Option<i64>> {
    match offset {
        Offset::Offset(o) if o >= 0 => Ok(Some(o)),
        Offset::End | Offset::Invalid => Ok(None),
        Offset::OffsetTail(_) | Offset::Offset(_) | Offset::Beginning | Offset::Stored => Err(KafkaError::Kafka {
            code: "FAIL".into(),
            message: format!("offsets for times: unexpected answer {offset:?} for {topic} [{partition}]"),
            retriable: false,
            fatal: false,
        }),
    }
}

/// Reads librdkafka's answer in the order asked; a partition the broker reports an error for
/// (an unknown partition, a leader moving) fails the whole call with that error.
pub fn answers(asked: &[(String, i32, i64)], got: &TopicPartitionList) -> Result<Vec<(String, i32, Option<i64>)>> {
    asked
        .iter()
        .map(|(t, p, _)| {
            let e = got.find_partition(t, *p).ok_or_else(|| KafkaError::Kafka {
                code: "FAIL".into(),
                message: format!("offsets for times: no answer for {t} [{p}]"),
                retriable: true,
                fatal: false,
            })?;
            e.error().map_err(|err| KafkaError::from_rdkafka(&format!("offset for time of {t} [{p}]"), &err))?;
            Ok((t.clone(), *p, answer(t, *p, e.offset())?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_puts_times_in_the_offset_field() {
        let tpl = request(&[("a".into(), 0, 1_700_000_000_000), ("a".into(), 1, 0)]).unwrap();
        assert_eq!(tpl.find_partition("a", 0).unwrap().offset(), Offset::Offset(1_700_000_000_000));
        assert_eq!(tpl.find_partition("a", 1).unwrap().offset(), Offset::Offset(0));
    }

    #[test]
    fn negative_times_are_refused_not_read_as_latest_or_earliest() {
        for ms in [-1, -2, i64::MIN] {
            let err = request(&[("a".into(), 0, ms)]).unwrap_err();
            assert!(err.to_string().contains("negative"), "{err}");
        }
        assert!(request(&[("a".into(), -1, 5)]).is_err());
    }

    #[test]
    fn end_means_no_message_at_or_after_the_time() {
        assert_eq!(answer("a", 0, Offset::Offset(42)).unwrap(), Some(42));
        assert_eq!(answer("a", 0, Offset::Offset(0)).unwrap(), Some(0));
        assert_eq!(answer("a", 0, Offset::End).unwrap(), None);
        assert!(answer("a", 0, Offset::Beginning).is_err());
    }

    #[test]
    fn answers_follow_the_request_order_and_flag_missing_partitions() {
        let asked = vec![("b".to_string(), 1, 10), ("a".to_string(), 0, 10)];
        let mut got = TopicPartitionList::new();
        got.add_partition_offset("a", 0, Offset::Offset(7)).unwrap();
        got.add_partition_offset("b", 1, Offset::End).unwrap();
        let out = answers(&asked, &got).unwrap();
        assert_eq!(out, vec![("b".to_string(), 1, None), ("a".to_string(), 0, Some(7))]);
        let missing = vec![("c".to_string(), 0, 10)];
        assert!(answers(&missing, &got).is_err());
    }
}
