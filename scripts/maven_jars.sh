#!/usr/bin/env bash
# Fetches the runtime jars a pom.xml lists from Maven Central into a cache outside the repository,
# once: <cache>/<name>-<version>/<subdir>/*.jar, with a VERSION file and a `.complete` marker (a
# second run finds it and returns at once). The version is the pom's <PROPERTY> element.
# Usage: maven_jars.sh POM PROPERTY NAME SUBDIR "LABEL"   (install_kafka.sh, install_spark_kafka.sh)
set -euo pipefail
pom="$1" property="$2" name="$3" subdir="$4" label="$5"
version="$(sed -n "s:.*<$property>\(.*\)</$property>.*:\1:p" "$pom")"
cache="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}/$name-$version"
if [ -f "$cache/.complete" ]; then
  echo "$label $version: cached in $cache"
  exit 0
fi
command -v mvn >/dev/null || { echo "$(basename "$0"): mvn (Maven) is required for $label" >&2; exit 1; }
echo "== $label $version from Maven Central into $cache" >&2
rm -rf "$cache.tmp"
mkdir -p "$cache.tmp/$subdir"
mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$cache.tmp/$subdir"
echo "$version" > "$cache.tmp/VERSION"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
touch "$cache/.complete"
echo "$label $version: $(ls "$cache/$subdir" | wc -l) jars in $cache"
