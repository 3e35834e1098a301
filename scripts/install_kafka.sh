#!/usr/bin/env bash
# Installs Apache Kafka (broker + controller, tools, Java clients) from Maven Central into a cache
# outside the repository: ~/.cache/pktstream/kafka-<version>/libs/*.jar. Idempotent: a second run
# finds the cache and returns at once. Needs Java 17+ and Maven (mvn).
#
# The test suite (tests/kafka_fixtures.py), the benchmarks and `pktstream broker --kafka` start it
# with `java -cp '<cache>/libs/*' kafka.Kafka server.properties` (pktstream.broker.ApacheKafka).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
cache="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}/kafka-$version"
if [ -f "$cache/.complete" ]; then
  echo "Apache Kafka $version: cached in $cache"
  exit 0
fi
command -v java >/dev/null || { echo "install_kafka: java (17+) is required" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install_kafka: mvn (Maven) is required" >&2; exit 1; }
echo "== Apache Kafka $version from Maven Central into $cache" >&2
rm -rf "$cache.tmp"
mkdir -p "$cache.tmp/libs"
mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$cache.tmp/libs"
echo "$version" > "$cache.tmp/VERSION"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
touch "$cache/.complete"
echo "Apache Kafka $version: $(ls "$cache/libs" | wc -l) jars in $cache"
