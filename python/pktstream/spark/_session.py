"""A local Spark session for tests, notebooks and benchmarks, with pktstream's sources registered."""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Optional

__all__ = ["local_session", "LOCAL_CONF"]

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


def local_session(
    app_name: str = "pktstream",
    *,
    master: str = "local[2]",
    conf: Optional[Mapping[str, Any]] = None,
    log_level: str = "WARN",
) -> Any:
    """Starts (or returns the running) local Spark session and registers pktstream's data sources.

    Binds to the loopback interface only, disables the UI, uses this interpreter for Python
    workers (``PYSPARK_PYTHON``, so they import the same pktstream) and UTC as session time zone.
    ``conf`` adds or overrides settings. Starting takes 10-25 s; share one session per process.

    Example:
        >>> from pktstream.spark import local_session
        >>> spark = local_session("demo")  # doctest: +SKIP
        >>> spark.read.format("pcap").load("tests/data/sample.pcap").count()  # doctest: +SKIP
        14
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from . import register

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**LOCAL_CONF, **dict(conf or {})}.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    register(spark)
    return spark
