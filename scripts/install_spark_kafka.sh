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
version="$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$here/spark/pom.xml")"
cache="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}/spark-kafka-$version"
if [ -f "$cache/.complete" ]; then
  echo "Spark Kafka connector $version: cached in $cache"
  exit 0
fi
command -v mvn >/dev/null || { echo "install_spark_kafka: mvn (Maven) is required" >&2; exit 1; }
echo "== Spark Kafka connector $version + PostgreSQL JDBC from Maven Central into $cache" >&2
rm -rf "$cache.tmp"
mkdir -p "$cache.tmp/jars"
mvn -q -B -f "$here/spark/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$cache.tmp/jars"
echo "$version" > "$cache.tmp/VERSION"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
touch "$cache/.complete"
echo "Spark Kafka connector $version: $(ls "$cache/jars" | wc -l) jars in $cache"
