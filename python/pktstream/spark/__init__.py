"""PySpark integration: Kafka topics and capture files as Spark DataFrames of packet columns.

Needs ``pip install "pktstream[spark]"`` (PySpark 4, Java 17). See ``docs/spark.md``.

* :func:`register` adds two Python data sources to a session: ``pktstream`` (Kafka, streaming and
  batch, with Spark's Kafka source's options; offsets in Spark's checkpoint; also a Kafka sink for
  ``df.write``/``df.writeStream``, at-least-once) and ``pcap`` (capture files; batch, or streaming
  over a directory).
* :func:`decode` turns the ``value`` column of a DataFrame read with Spark's own Kafka source into
  packet columns (``mapInArrow``, no Python per row).
* :func:`foreach_arrow` hands each micro-batch to a function as a :class:`pyarrow.Table`.
* :func:`local_session` starts a local, loopback-only session with the sources registered (and,
  with ``kafka_connector=True``, Spark's own Kafka connector from :func:`connector_jars`).

Example:
    >>> import pktstream.spark
    >>> spark = pktstream.spark.local_session()   # local[2] on loopback; the running one if any
    >>> spark.read.format("pcap").load("tests/data/sample.pcap").count()
    200
    >>> packets = (spark.readStream.format("pktstream")
    ...            .option("kafka.bootstrap.servers", "127.0.0.1:9092")
    ...            .option("subscribe", "packets").option("startingOffsets", "earliest")
    ...            .load())
    >>> q = (packets.groupBy("ip_proto").count().writeStream.outputMode("complete")
    ...      .format("memory").queryName("protocols").start())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable

import pyarrow as pa

from ._decode import decode
from ._pcap import PcapDataSource
from ._schema import arrow_schema, conform, parse_schema, spark_schema, spark_type
from ._session import connector_jars, local_session
from ._source import KafkaDataSource

__all__ = [
    "register",
    "decode",
    "foreach_arrow",
    "to_arrow",
    "local_session",
    "connector_jars",
    "KafkaDataSource",
    "PcapDataSource",
    "spark_schema",
    "spark_type",
    "arrow_schema",
    "conform",
    "parse_schema",
]


def register(spark: Any) -> Any:
    """Registers the ``pktstream`` and ``pcap`` data sources with a Spark session (idempotent).

    Example:
        >>> import pktstream.spark
        >>> spark = pktstream.spark.register(spark)
        >>> spark.read.format("pcap").load("tests/data/*.pcap").count()
        247
    """
    spark.dataSource.register(KafkaDataSource)
    spark.dataSource.register(PcapDataSource)
    return spark


def to_arrow(df: Any) -> pa.Table:
    """A DataFrame collected as a :class:`pyarrow.Table`: ``df.toArrow()`` on Spark 4, else through
    pandas (Arrow-enabled ``toPandas``)."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    return pa.Table.from_pandas(df.toPandas(), preserve_index=False)  # pragma: no cover


def foreach_arrow(fn: Callable[[pa.Table, int], Any]) -> Callable[[Any, int], None]:
    """Adapts ``fn(table, batch_id)`` for ``writeStream.foreachBatch``: each micro-batch arrives as
    one :class:`pyarrow.Table` (collected on the driver; keep batches to what fits in memory, e.g.
    with ``maxOffsetsPerTrigger``). A retried batch comes again with the same ``batch_id``: make
    what ``fn`` writes idempotent per batch id.

    Example:
        >>> import os, tempfile, pyarrow.parquet
        >>> import pktstream.spark
        >>> out = tempfile.mkdtemp()
        >>> def save(table, batch_id):
        ...     pyarrow.parquet.write_table(table, os.path.join(out, f"batch-{batch_id:06d}.parquet"))
        >>> packets = spark.readStream.format("pcap").load("tests/data/*.pcap")
        >>> q = (packets.writeStream.foreachBatch(pktstream.spark.foreach_arrow(save))
        ...      .option("checkpointLocation", os.path.join(out, "checkpoint"))
        ...      .trigger(availableNow=True).start())
        >>> q.awaitTermination()
        >>> sum(pyarrow.parquet.read_table(os.path.join(out, f)).num_rows
        ...     for f in os.listdir(out) if f.endswith(".parquet"))
        247
    """

    def run(df: Any, batch_id: int) -> None:
        fn(to_arrow(df), batch_id)

    run.__name__ = getattr(fn, "__name__", "foreach_arrow")
    run.__doc__ = getattr(fn, "__doc__", None)
    return run
