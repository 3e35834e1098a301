#!/usr/bin/env bash
# Installs Spark's Kafka connector (org.apache.spark:spark-sql-kafka-0-10_2.13) and the PostgreSQL
# JDBC driver from Maven Central into a cache outside the repository:
# ~/.cache/pktstream/spark-kafka-<spark version>/jars/*.jar. Idempotent: a second run finds the
# `.complete` marker and returns at once. Needs Maven (mvn).
#
# Only the jars PySpark's own jars/ lacks are kept (connector, token provider, kafka-clients,
# commons-pool2, postgresql): scripts/spark/pom.xml excludes the rest. The Spark version is the one
# pinned in pyproject.toml's `spark` extra; pktstream.spark.connector_jars() finds the jars and
# local_session(kafka_connector=True) / the test suite pass them with `spark.jars`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/maven_jars.sh" "$here/spark/pom.xml" spark.version spark-kafka jars "Spark Kafka connector"
