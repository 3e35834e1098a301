"""A local Spark session for tests, notebooks and benchmarks, with pktstream's sources registered."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, List, Mapping, Optional

__all__ = ["local_session", "connector_jars", "LOCAL_CONF", "JARS_ENV"]

#: Comma-separated jar paths that replace the cached connector jars (see :func:`connector_jars`).
JARS_ENV = "PKTSTREAM_SPARK_JARS"

#: Settings for a quiet, loopback-only local session (see ``docs/spark.md``).
LOCAL_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # q.stop() during a foreachBatch can overflow the stream thread's default stack.
    "spark.driver.extraJavaOptions": "-Xss16m",
    "spark.executor.extraJavaOptions": "-Xss16m",
    "spark.sql.streaming.stopTimeout": "30s",
}


def connector_jars(spark_version: Optional[str] = None) -> List[str]:
    """The jars of Spark's Kafka connector (``spark-sql-kafka-0-10_2.13``, its token provider,
    ``kafka-clients``, ``commons-pool2``) and the PostgreSQL JDBC driver, for ``spark.jars``.

    ``$PKTSTREAM_SPARK_JARS`` (comma-separated paths) wins when set. Otherwise the jars come from
    the cache ``scripts/install_spark_kafka.sh`` fills: ``~/.cache/pktstream/spark-kafka-<version>/jars``
    (``$PKTSTREAM_CACHE`` moves it) for ``spark_version`` (default: the installed PySpark's). A
    connector must match the Spark it runs in; when the cache holds only another patch release of
    the same minor version (Maven Central serves the connector up to 4.2.0, PyPI has PySpark 4.2.1),
    that one is used with a warning.

    Raises:
        FileNotFoundError: no cached connector for this Spark: the message says how to install it.

    Example:
        >>> jars = connector_jars()   # after scripts/install_spark_kafka.sh
        >>> any("spark-sql-kafka-0-10_2.13" in j for j in jars)
        True
        >>> spark = local_session(conf={"spark.jars": ",".join(jars)})  # or kafka_connector=True
    """
    override = os.environ.get(JARS_ENV)
    if override:
        return [j.strip() for j in override.split(",") if j.strip()]
    if spark_version is None:
        import pyspark

        spark_version = pyspark.__version__
    cache = Path(os.environ.get("PKTSTREAM_CACHE") or Path.home() / ".cache" / "pktstream")

    def jars(version: str) -> List[str]:
        folder = cache / f"spark-kafka-{version}"
        if not (folder / ".complete").exists():
            return []
        return sorted(str(p) for p in (folder / "jars").glob("*.jar"))

    found = jars(spark_version)
    if found:
        return found
    minor = ".".join(spark_version.split(".")[:2])
    siblings = sorted(
        (p.name[len("spark-kafka-"):] for p in cache.glob(f"spark-kafka-{minor}.*")),
        key=lambda v: [int(x) if x.isdigit() else 0 for x in re.split(r"[.-]", v)],
    )
    for version in reversed(siblings):
        found = jars(version)
        if found:
            warnings.warn(
                f"Spark's Kafka connector {version} with Spark {spark_version}: the connector should match "
                f"Spark (pin pyspark=={version}, as pyproject.toml's `spark` extra does)",
                stacklevel=2,
            )
            return found
    raise FileNotFoundError(
        f"Spark's Kafka connector for Spark {spark_version} is not in {cache}: run "
        f"scripts/install_spark_kafka.sh (Maven Central), or set ${JARS_ENV} to the jars' paths"
    )


def local_session(
    app_name: str = "pktstream",
    *,
    master: str = "local[2]",
    conf: Optional[Mapping[str, Any]] = None,
    log_level: str = "WARN",
    kafka_connector: bool = False,
) -> Any:
    """Starts (or returns the running) local Spark session and registers pktstream's data sources.

    Binds to the loopback interface only, disables the UI, uses this interpreter for Python
    workers (``PYSPARK_PYTHON``, so they import the same pktstream) and UTC as session time zone.
    ``conf`` adds or overrides settings. Starting takes 10-25 s; share one session per process.
    ``kafka_connector=True`` puts Spark's Kafka connector and the PostgreSQL JDBC driver on the
    class path (``spark.jars``, see :func:`connector_jars`), so ``format("kafka")`` and
    ``format("jdbc")`` work. Jars are fixed when the JVM starts: a session already running without
    them keeps running without them.

    Example:
        >>> from pktstream.spark import local_session
        >>> spark = local_session("demo")
        >>> spark.read.format("pcap").load("tests/data/sample.pcap").count()
        200
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from . import register

    settings = {**LOCAL_CONF, **dict(conf or {})}
    if kafka_connector:
        jars = connector_jars()
        extra = settings.get("spark.jars")
        settings["spark.jars"] = ",".join(jars + ([str(extra)] if extra else []))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    register(spark)
    return spark
