"""A multi-partition topic read on a Spark cluster with two executors (``local-cluster[2,1,1024]``:
a master and two workers, each executor its own JVM and Python workers).

Run as a script by ``tests/test_spark_connector.py`` (a process holds one SparkContext, and the test
session's is ``local[2]``). Reads the topic twice, through the ``pktstream`` source and through
Spark's Kafka source + :func:`pktstream.spark.decode`, tags every row with the executor that read
it (an executor's working directory is ``<worker dir>/<app id>/<executor id>``), and prints one
JSON line: per path, the executors seen and every row's ``(partition, offset, frame_number)``.

    python tests/spark_cluster_job.py BOOTSTRAP TOPIC
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, Callable, Dict, Iterator

import pyarrow as pa


def tagger(path: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Rows' Kafka coordinates and frame number, with the path and the executor id that read them."""

    def tag(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        executor = os.path.basename(os.getcwd())
        for b in batches:
            yield pa.record_batch(
                [pa.array([path] * b.num_rows, pa.string()), b.column("partition"), b.column("offset"),
                 b.column("frame_number").cast(pa.int64()), pa.array([executor] * b.num_rows, pa.string())],
                names=["path", "partition", "offset", "frame_number", "executor"],
            )

    return tag


def collect(frames: Dict[str, Any]) -> dict:
    """Both reads in one Spark job (a union): the executors start their Python workers once."""
    schema = "path STRING, partition INT, offset BIGINT, frame_number BIGINT, executor STRING"
    tagged = [df.mapInArrow(tagger(path), schema) for path, df in frames.items()]
    union = tagged[0]
    for df in tagged[1:]:
        union = union.unionByName(df)
    rows = union.toArrow().to_pylist()
    out = {}
    for path in frames:
        mine = [r for r in rows if r["path"] == path]
        out[path] = {"executors": sorted({r["executor"] for r in mine}),
                     "rows": sorted((r["partition"], r["offset"], r["frame_number"]) for r in mine)}
    return out


def main(bootstrap: str, topic: str) -> int:
    from pktstream.spark import decode, local_session

    started = time.monotonic()
    spark = local_session(
        "pktstream-cluster",
        master="local-cluster[2,1,1024]",
        kafka_connector=True,
        conf={
            "spark.executor.memory": "512m",
            # Executors are separate processes: give their Python workers this pktstream too.
            "spark.executorEnv.PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            # Schedule only once both executors are up, so both can take tasks.
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "90s",
        },
    )
    app = spark.sparkContext.applicationId
    up = time.monotonic() - started
    try:
        source = (spark.read.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
                  .option("subscribe", topic).option("format", "json").load())
        kafka = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
                 .option("subscribe", topic).option("startingOffsets", "earliest").load())
        out = {**collect({"pktstream": source, "decode": decode(kafka, format="json")}),
               "startup_s": round(up, 1), "total_s": round(time.monotonic() - started, 1)}
    finally:
        spark.stop()
        # local-cluster workers keep executor directories under $SPARK_HOME/work: remove this app's.
        import pyspark

        work = os.path.join(os.path.dirname(pyspark.__file__), "work")
        shutil.rmtree(os.path.join(work, app), ignore_errors=True)
        if os.path.isdir(work) and not os.listdir(work):
            os.rmdir(work)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
