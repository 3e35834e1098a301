#!/usr/bin/env bash
# Installs Apache Kafka (broker + controller, tools, Java clients) from Maven Central into a cache
# outside the repository: ~/.cache/pktstream/kafka-<version>/libs/*.jar. Idempotent: a second run
# finds the cache and returns at once. Needs Java 17+ and Maven (mvn).
#
# The test suite (tests/kafka_fixtures.py), the benchmarks and `pktstream broker --kafka` start it
# with `java -cp '<cache>/libs/*' kafka.Kafka server.properties` (pktstream.broker.ApacheKafka).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v java >/dev/null || { echo "install_kafka: java (17+) is required" >&2; exit 1; }
exec bash "$here/maven_jars.sh" "$here/kafka/pom.xml" kafka.version kafka libs "Apache Kafka"
