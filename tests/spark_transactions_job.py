"""The "transactions to PostgreSQL" tutorial job, as its authors write it, on Spark's Kafka source.

JSON transactions on a topic; a Structured Streaming query with a 2-second trigger and a
checkpoint; running totals per branch and currency (``groupBy(...).agg(count, sum)`` in update
mode); each micro-batch written to PostgreSQL either with Spark's JDBC sink or with ADBC in
``foreachBatch``. ``tests/test_spark_connector.py`` imports it, and runs it as a script to kill the
process mid-stream and restart it on its checkpoint.

Both writers are idempotent per batch id, as a sink must be (after a crash Spark runs the last
uncommitted batch again with the same id): they replace the rows of that ``batch_id``. The
table keeps every batch's updated totals; :data:`LATEST` reads the current total per group.

Command line (runs until killed)::

    python tests/spark_transactions_job.py BOOTSTRAP TOPIC CHECKPOINT POSTGRES_URI TABLE {adbc,jdbc}
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional
from urllib.parse import urlparse

import pyarrow as pa

#: The transactions' JSON, as a Spark DDL schema.
SCHEMA = "txn_id BIGINT, branch STRING, currency STRING, amount DOUBLE, ts TIMESTAMP"

#: The table both writers fill: every batch's updated totals, keyed by batch id.
TABLE_DDL = "CREATE TABLE {table} (batch_id BIGINT, branch TEXT, currency TEXT, n BIGINT, total DOUBLE PRECISION)"

#: The current total per branch and currency: each group's row from its latest batch.
LATEST = ("SELECT DISTINCT ON (branch, currency) branch, currency, n, total FROM {table} "
          "ORDER BY branch, currency, batch_id DESC")


def jdbc_url(uri: str) -> tuple[str, str, str]:
    """``postgresql://user:password@host:port/db`` -> (``jdbc:postgresql://host:port/db``, user,
    password): the credentials go to the driver as properties, never in the URL Spark logs."""
    u = urlparse(uri)
    return f"jdbc:postgresql://{u.hostname}:{u.port}{u.path}", u.username or "", u.password or ""


def jdbc_writer(uri: str, table: str) -> Callable[[Any, int], None]:
    """``foreachBatch`` through Spark's JDBC sink (the PostgreSQL driver from ``spark.jars``). The
    batch's earlier rows are deleted first over the same driver, from the JVM."""
    url, user, password = jdbc_url(uri)

    def write(df: Any, batch_id: int) -> None:
        from pyspark.sql import functions as F

        jvm = df.sparkSession.sparkContext._jvm
        props = jvm.java.util.Properties()
        props.setProperty("user", user)
        props.setProperty("password", password)
        conn = jvm.org.postgresql.Driver().connect(url, props)
        try:
            conn.createStatement().executeUpdate(f"DELETE FROM {table} WHERE batch_id = {int(batch_id)}")
        finally:
            conn.close()
        (df.select(F.lit(batch_id).cast("bigint").alias("batch_id"), "branch", "currency", "n", "total")
         .write.format("jdbc").option("url", url).option("user", user).option("password", password)
         .option("dbtable", table)
         .option("driver", "org.postgresql.Driver").mode("append").save())

    return write


def adbc_writer(uri: str, table: str) -> Callable[[Any, int], None]:
    """``foreachBatch`` through ADBC (``adbc_driver_postgresql``): the batch collected as Arrow,
    its earlier rows deleted and the new ones ingested (COPY) in one transaction."""

    def write(df: Any, batch_id: int) -> None:
        import adbc_driver_postgresql.dbapi as dbapi

        data = df.select("branch", "currency", "n", "total").toArrow()
        data = data.add_column(0, "batch_id", pa.array([batch_id] * data.num_rows, pa.int64()))
        with dbapi.connect(uri) as conn:
            with conn.cursor() as cur:
                cur.execute(f"DELETE FROM {table} WHERE batch_id = $1", parameters=(batch_id,))
                if data.num_rows:
                    cur.adbc_ingest(table, data, mode="append")
            conn.commit()
        print(f"batch {batch_id}: {data.num_rows} rows", flush=True)

    return write


def start(spark: Any, bootstrap: str, topic: str, checkpoint: str, uri: str, table: str, sink: str,
          max_offsets: Optional[int] = None) -> Any:
    """Starts the tutorial's query: Kafka -> ``from_json`` -> totals per branch and currency ->
    PostgreSQL every 2 seconds, with ``checkpoint``."""
    from pyspark.sql import functions as F

    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic)
              .option("startingOffsets", "earliest"))
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    transactions = (reader.load()
                    .select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("t"))
                    .select("t.*"))
    totals = transactions.groupBy("branch", "currency").agg(F.count("*").alias("n"),
                                                           F.sum("amount").alias("total"))
    writer = {"jdbc": jdbc_writer, "adbc": adbc_writer}[sink](uri, table)
    return (totals.writeStream.outputMode("update")
            .trigger(processingTime="2 seconds")
            .option("checkpointLocation", checkpoint)
            .foreachBatch(writer)
            .start())


def main(argv: list) -> int:
    bootstrap, topic, checkpoint, uri, table, sink = argv
    from pktstream.spark import local_session

    spark = local_session("transactions-job", kafka_connector=True)
    print("started", flush=True)
    start(spark, bootstrap, topic, checkpoint, uri, table, sink, max_offsets=300).awaitTermination()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
