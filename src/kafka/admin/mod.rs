//! Topics and consumer groups: what `kafka-topics --list/--describe/--create/--delete` and
//! `kafka-consumer-groups --list/--describe` show, through librdkafka's admin and metadata calls.
//!
//! Why librdkafka and not a few hand-written requests: the requests are the easy part. Reaching
//! the broker is not: TLS, SASL (SCRAM, PLAIN, OAUTHBEARER, GSSAPI), the controller that must
//! receive a CreateTopics, the group coordinator that holds the offsets, version negotiation. The
//! client every pktstream producer and consumer already uses does all of it with the same
//! configuration keys, so an admin call works wherever producing works.
//!
//! Every call takes the user's librdkafka [`Config`] (with `bootstrap.servers`) and a timeout, and
//! turns "no broker answered" into [`KafkaError::Timeout`] naming the servers, or into the TLS or
//! SASL failure that kept the client out (see [`super::connection`]).

mod groups;
mod topics;

pub use groups::{group_offsets, list_groups, GroupSummary, PartitionOffsets};
pub use topics::{
    create_topic, delete_topic, describe_topic, list_topics, PartitionInfo, TopicConfigEntry, TopicDescription,
    TopicSummary,
};

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::Client;
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode;

use super::config::Config;
use super::connection::RecordingContext;
use super::error::{code_of, KafkaError, Result};

/// Every admin client records TLS and SASL failures, so a timeout they cause says what happened.
pub(crate) type Context = RecordingContext;

/// An admin client for `config`, after librdkafka has checked every key.
///
/// librdkafka's admin client is a producer inside, and producers let a metadata request create
/// the topics it names on brokers that auto-create (`auto.create.topics.enable`, Tansu's
/// in-memory build): describing a missing topic would create it. So admin clients ask without.
pub(crate) fn admin_client(config: &Config) -> Result<AdminClient<Context>> {
    let mut config = config.clone();
    config.set_default("allow.auto.create.topics", "false");
    config.validate()?;
    config.client_config().create_with_context(Context::default()).map_err(|e| KafkaError::from_rdkafka("", &e))
}

/// Request and operation timeouts for one admin call.
pub(crate) fn admin_options(timeout: Duration) -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout))
}

/// Codes that mean no broker answered (down, unreachable, or still starting).
pub(crate) fn is_unreachable(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
    )
}

/// An rdkafka error from `what`: unreachable brokers become [`KafkaError::Timeout`], unless the
/// client recorded a TLS or SASL failure that explains them.
pub(crate) fn admin_error(
    client: &Client<Context>,
    config: &Config,
    timeout: Duration,
    what: &str,
    e: &RdError,
) -> KafkaError {
    let code = code_of(e);
    let mapped = if is_unreachable(code) {
        timed_out(config, timeout, what, &e.to_string())
    } else if matches!(e, RdError::AdminOp(_)) {
        KafkaError::from_code(what, code)
    } else {
        KafkaError::from_rdkafka(what, e)
    };
    explain(client, mapped)
}

/// A per-resource error code from `what` (one topic of a CreateTopics, say), mapped the same way.
pub(crate) fn admin_code_error(
    client: &Client<Context>,
    config: &Config,
    timeout: Duration,
    what: &str,
    code: RDKafkaErrorCode,
) -> KafkaError {
    let mapped = if is_unreachable(code) {
        timed_out(config, timeout, what, &code.to_string())
    } else {
        KafkaError::from_code(what, code)
    };
    explain(client, mapped)
}

/// `e`, or the TLS/SASL failure behind it. Admin clients' error events wait in their main queue
/// (rdkafka polls only the operation queue), so they are drained first.
fn explain(client: &Client<Context>, e: KafkaError) -> KafkaError {
    let errors = &client.context().errors;
    errors.drain(client);
    errors.explain(e)
}

fn timed_out(config: &Config, timeout: Duration, what: &str, why: &str) -> KafkaError {
    KafkaError::Timeout(format!(
        "{what}: no Kafka broker answered at {} within {:.1} s ({why})",
        config.servers(),
        timeout.as_secs_f64()
    ))
}
