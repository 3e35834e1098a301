"""The ``pktstream`` command line.

Examples:
    pktstream inspect capture.pcapng          # capinfos-style summary + first packets
    pktstream convert capture.pcap out.parquet --compression zstd
    pktstream convert capture.pcap https.parquet --bpf "tcp port 443"   # only what tcpdump's filter keeps
    pktstream convert capture.pcapng dns.pcap --bpf "udp port 53"       # as tcpdump -r ... -w dns.pcap
    pktstream schema                          # the packet columns
    pktstream broker --topic packets:3        # a local Kafka-compatible broker on 127.0.0.1:9092
    pktstream produce capture.pcap --topic packets --format json
    pktstream flows capture.pcap              # meter flows; top flows by bytes and a summary
    pktstream flows capture.pcap --topic netflow -b 127.0.0.1:9092   # the distance pipeline's events
    pktstream flows -i eth0 --idle-timeout 30 -o flows.parquet      # live; Ctrl-C ends and flushes
    pktstream capture -i eth0 --bpf "udp" --count 1000 --output out.parquet
    pktstream capture -i eth0 --topic packets -b 127.0.0.1:9092   # raw frames, Ctrl-C to stop
    pktstream consume --topic packets --group analytics --max 1000 --output out.parquet
    pktstream distances --in-topic netflow --out-topic netflow-pairs --window 5s --idle-timeout 10
    pktstream demo                            # local broker, capture -> Kafka -> Arrow, then stop
    pktstream topics --describe packets -b 127.0.0.1:9092   # partitions, leaders, offsets, configs
    pktstream groups --describe analytics     # committed offsets and lag per partition

:func:`main` runs one command in-process and returns its exit status:

    >>> from pktstream.cli import main
    >>> main(["schema"])
    frame_number     uint64
    ts               timestamp[ns, tz=UTC]
    ...
    0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ._build import version_text
from .exceptions import PktstreamError


def _inspect(args: argparse.Namespace) -> int:
    from ._inspect import render, summarize

    s = summarize(args.file, head=args.count, progress=None if not args.no_progress else False, bpf=args.bpf)
    if args.json:
        print(json.dumps(s.as_dict(), indent=2, default=str))
    else:
        print(render(s, top=args.top))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ._progress import Progress
    from ._reader import iter_batches

    to_pcap = args.output.endswith((".pcap", ".pcap.gz"))
    columns = args.columns.split(",") if args.columns else None
    if to_pcap:
        if columns:
            print("--columns does not apply to a pcap output", file=sys.stderr)
            return 2
        columns = ["ts", "wirelen", "link_type", "frame"]
    reader = iter_batches(args.file, columns=columns, batch_size=args.batch_size,
                          addresses=args.addresses, strict=args.strict, bpf=args.bpf)
    with reader, Progress(reader.file_size, "converting",
                          False if args.no_progress else None) as bar:
        write = _pcap_output if to_pcap else _parquet_output
        rows, skipped = write(args, reader, lambda: bar.update(reader.stats["bytes_read"]))
    print(f"wrote {rows:,} packets to {args.output}", file=sys.stderr)
    if skipped:
        print(f"left out {skipped:,} packets of another link type than the first packet's "
              "(a pcap file holds one link type)", file=sys.stderr)
    return 0


def _parquet_output(args: argparse.Namespace, reader: Any, progress: Callable[[], None]) -> Tuple[int, int]:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(args.output, reader.schema, compression=args.compression) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
            progress()
    return rows, 0


def _pcap_output(args: argparse.Namespace, reader: Any, progress: Callable[[], None]) -> Tuple[int, int]:
    """The packets as a classic pcap (as ``tcpdump -r FILE -w OUT EXPR``): nanosecond timestamps
    unless the input is a microsecond pcap, the link type of the first packet."""
    from ._sink import PcapWriter

    writer: Optional[PcapWriter] = None
    try:
        for batch in reader:
            if writer is None:
                if batch.num_rows == 0:
                    continue
                link_types = batch.column("link_type").drop_null()
                nanos = reader.stats.get("format") != "pcap"
                writer = PcapWriter(args.output, link_type=link_types[0].as_py() if len(link_types) else 1,
                                    nanosecond=nanos)
            writer.write_batch(batch)
            progress()
        if writer is None:  # nothing passed: an empty file, as tcpdump writes
            writer = PcapWriter(args.output)
    finally:
        if writer is not None:
            writer.close()
    return writer.packets, writer.skipped


def _schema(args: argparse.Namespace) -> int:
    from ._reader import schema

    for f in schema(addresses=args.addresses):
        print(f"{f.name:<16} {f.type}")
    return 0


#: librdkafka properties from the environment: ``PKTSTREAM_X_SASL_PASSWORD`` is ``sasl.password`` (as ``-X sasl.password=...``)
#: (librdkafka's string keys are dotted, never underscored, so the mapping is one to one).
ENV_PREFIX = "PKTSTREAM_X_"


def _properties_file(path: str) -> dict:
    """A librdkafka properties file, as kcat's ``-F`` reads it: ``key=value`` lines, ``#`` comments."""
    config = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                # The line may hold a secret: name the place, never the text.
                raise ValueError(f"{path}:{number}: expected key=value (a librdkafka property)")
            config[key.strip()] = value.strip()
    return config


def _client_config(args: argparse.Namespace) -> Optional[dict]:
    """librdkafka properties, later sources winning: ``PKTSTREAM_X_*`` environment variables,
    then ``-F FILE``, then ``-X key=value``. Secrets belong in the first two: ``ps`` shows ``-X``."""
    import os

    config = {
        name[len(ENV_PREFIX):].lower().replace("_", "."): value
        for name, value in os.environ.items()
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX)
    }
    if getattr(args, "config_file", None):
        config.update(_properties_file(args.config_file))
    config.update(_kafka_config(args.config) or {})
    return config or None


def _add_client_config(p: argparse.ArgumentParser) -> None:
    """``-X`` and ``-F``: the librdkafka properties of a Kafka command."""
    p.add_argument("-X", dest="config", action="append", metavar="KEY=VALUE",
                   help="librdkafka property (secrets: use -F or PKTSTREAM_X_<KEY>, which ps does not show)")
    p.add_argument("-F", "--config-file", metavar="FILE",
                   help="librdkafka properties file (key=value lines, # comments), read before -X")


def _kafka_config(pairs: Optional[List[str]]) -> Optional[dict]:
    if not pairs:
        return None
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"-X expects key=value (a librdkafka property), not {pair!r}")
        config[key] = value
    return config


def _produce(args: argparse.Namespace) -> int:
    from ._kafka import produce_pcap

    if args.create_topic:
        from ._kafka import create_topic

        create_topic(args.topic, partitions=args.create_topic, bootstrap_servers=args.bootstrap_servers)
    key = None if args.key == "none" else args.key
    try:
        report = produce_pcap(
            args.file,
            args.topic,
            bootstrap_servers=args.bootstrap_servers,
            format=args.format,
            key=key,
            columns=args.columns.split(",") if args.columns else None,
            config=_client_config(args),
            progress=False if args.no_progress else None,
            timestamp_unit=args.timestamp_unit,
            rows_per_message=args.rows_per_message,
            bpf=args.bpf,
        )
    except KeyboardInterrupt as e:
        partial = getattr(e, "report", None)
        if partial is not None:
            print(f"pktstream: interrupted; {partial}", file=sys.stderr)
        raise
    print(report, file=sys.stderr)
    for w in report.warnings:
        print(f"pktstream: warning: {w}", file=sys.stderr)
    return 0


def _flow_options(args: argparse.Namespace) -> Dict[str, Any]:
    return dict(idle_timeout=args.idle_timeout, active_timeout=args.active_timeout, tcp_close=args.tcp_close,
                statistics=args.statistics, server_name=args.server_name, accounting=args.accounting,
                max_flows=args.max_flows, strict=args.strict,
                # A live capture filters in the kernel (capture(bpf=...)); a file through libpcap here.
                bpf=None if args.interface else args.bpf)


def _flow_summary(stats: dict, by_reason: Dict[str, int], seconds: float, extra: str = "") -> str:
    """The closing paragraph of ``pktstream flows``."""
    packets = int(stats.get("packets", 0))
    filtered = int(stats.get("filtered", 0))
    kept = f" ({filtered:,} left out by the BPF filter)" if filtered else ""
    reasons = ", ".join(f"{n:,} {r}" for r, n in sorted(by_reason.items(), key=lambda x: (-x[1], x[0]))) or "none"
    rate = packets / seconds if seconds > 0 else 0.0
    return (f"{packets:,} packets{kept} -> {int(stats.get('flows', 0)):,} flows (by expiration: {reasons}); "
            f"{int(stats.get('evicted', 0)):,} evicted, {int(stats.get('not_ip', 0)):,} not-IP packets, "
            f"{int(stats.get('fragments', 0)):,} non-first fragments; {seconds:.2f} s "
            f"({rate:,.0f} packets/s){extra}")


def _flows(args: argparse.Namespace) -> int:
    """``pktstream flows``: meter a capture's or an interface's flows into Parquet, a Kafka topic,
    or a top-flows table."""
    if args.topic and args.output:
        raise ValueError("give either --topic or --output, not both")
    source: Any = args.file
    if args.interface:
        if args.file:
            raise ValueError("give a capture file or --interface, not both")
        from ._live import capture

        source = capture(args.interface, bpf=args.bpf, snaplen=args.snaplen, promisc=args.promisc,
                         buffer_size=args.buffer_size, timeout=args.timeout, max_packets=args.count,
                         duration=args.duration)
    elif not args.file:
        raise ValueError("give a capture file, or --interface for a live capture")
    with _ctrl_c_stops(source if args.interface else None):
        return _meter_flows(args, source)


@contextlib.contextmanager
def _ctrl_c_stops(capture: Any) -> Iterator[None]:
    """While metering a live capture, Ctrl-C ends the capture (the active flows are flushed and
    written) instead of raising."""
    if capture is None:
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: capture.stop())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _meter_flows(args: argparse.Namespace, source: Any) -> int:
    import time

    import pyarrow as pa

    from ._flows import _count_expirations, iter_flows, produce_flows, suricata_events
    from ._progress import Progress

    layout = args.layout or ("suricata" if args.topic else "native")
    progress = False if args.no_progress else None
    started = time.monotonic()
    if args.topic:
        if args.create_topic:
            from ._kafka import create_topic

            create_topic(args.topic, partitions=args.create_topic, bootstrap_servers=args.bootstrap_servers,
                         config=_client_config(args))
        try:
            report = produce_flows(source, args.topic, bootstrap_servers=args.bootstrap_servers,
                                   layout="native" if layout == "native" else "suricata",
                                   config=_client_config(args), key="auto" if args.key is None else
                                   (None if args.key == "none" else args.key), ipv6=args.ipv6,
                                   progress=progress, **_flow_options(args))
        except KeyboardInterrupt as e:
            partial = getattr(e, "report", None)
            if partial is not None:
                print(f"pktstream: interrupted; {partial}", file=sys.stderr)
            raise
        skipped = f"; {report.skipped_ipv6:,} IPv6 flows not sent" if report.skipped_ipv6 else ""
        print(f"sent {report.delivered:,} of {report.messages:,} flow events to {args.topic} "
              f"({layout} layout){skipped}", file=sys.stderr)
        print(_flow_summary(report.flow_stats, report.expirations, time.monotonic() - started,
                            f"; {_capture_stats(report.flow_stats)}" if args.interface else ""), file=sys.stderr)
        for w in report.warnings:
            print(f"pktstream: warning: {w}", file=sys.stderr)
        return 0

    reader = iter_flows(source, **_flow_options(args))
    by_reason: Dict[str, int] = {}
    top: Optional[pa.Table] = None
    writer = None
    written = 0
    with reader, Progress(_size(args.file) if args.file else None, "flows", progress) as bar:
        try:
            for batch in reader:
                _count_expirations(batch, by_reason)
                if args.output:
                    out = suricata_events(batch, ipv6=args.ipv6) if layout == "suricata" else pa.Table.from_batches(
                        [batch])
                    if writer is None:
                        import pyarrow.parquet as pq

                        writer = pq.ParquetWriter(args.output, out.schema, compression=args.compression)
                    writer.write_table(out)
                    written += out.num_rows
                else:  # keep only the top flows seen so far: memory stays bounded
                    t = pa.Table.from_batches([batch]) if top is None else pa.concat_tables(
                        [top, pa.Table.from_batches([batch])])
                    top = t.sort_by([("bytes", "descending"), ("flow_id", "ascending")]).slice(0, args.top)
                bar.update(reader.stats.get("bytes_read", 0))
            if args.output and writer is None:  # no flow at all: still a valid (empty) file
                import pyarrow.parquet as pq

                from ._flows import SURICATA_SCHEMA

                schema = SURICATA_SCHEMA if layout == "suricata" else reader.schema
                writer = pq.ParquetWriter(args.output, schema, compression=args.compression)
        finally:
            if writer is not None:
                writer.close()
    stats = reader.stats
    if args.output:
        skipped = stats.get("flows", 0) - written
        note = f"; {skipped:,} IPv6 flows left out" if skipped else ""
        print(f"wrote {written:,} flows to {args.output} ({layout} layout){note}", file=sys.stderr)
    else:
        _print_top_flows(top, args.top)
    print(_flow_summary(stats, by_reason, time.monotonic() - started,
                        f"; {_capture_stats(stats)}" if args.interface else ""), file=sys.stderr)
    for w in stats.get("warnings") or []:
        print(f"pktstream: warning: {w}", file=sys.stderr)
    return 0


def _size(path: str) -> Optional[int]:
    import os

    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _print_top_flows(top: Any, n: int) -> None:
    """The top flows by bytes, as ``inspect`` prints its talkers."""
    print(f"Top flows by bytes (top {n}):")
    if top is None or top.num_rows == 0:
        print("    (no flows)")
        return
    rows = []
    names = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
    for r in top.to_pylist():
        src = r["src_ip"] if r["src_port"] is None else _endpoint(r["src_ip"], r["src_port"])
        dst = r["dst_ip"] if r["dst_port"] is None else _endpoint(r["dst_ip"], r["dst_port"])
        seconds = r["duration"].total_seconds() if r["duration"] is not None else 0.0
        rows.append((f"{r['bytes']:,}", f"{r['packets']:,}", names.get(r["ip_proto"], str(r["ip_proto"])), src,
                     dst, f"{seconds:.3f}", r["expiration"]))
    header = ("BYTES", "PACKETS", "PROTO", "SOURCE", "DESTINATION", "SECONDS", "END")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    right = {0, 1, 5}
    for row in (header, *rows):
        cells = [str(x).rjust(w) if i in right else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths))]
        print("    " + "  ".join(cells).rstrip())


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _capture(args: argparse.Namespace) -> int:
    """Live capture to a topic, a Parquet file, a pcap file or JSON lines; Ctrl-C stops and flushes."""
    live = dict(
        bpf=args.bpf, snaplen=args.snaplen, promisc=args.promisc, buffer_size=args.buffer_size,
        timeout=args.timeout, immediate=args.immediate, max_packets=args.count, duration=args.duration,
    )
    out = args.output
    if args.topic and out:
        raise ValueError("give either --topic or --output, not both")
    if args.topic:
        from ._live import produce_live

        try:
            report = produce_live(
                args.interface, args.topic, bootstrap_servers=args.bootstrap_servers, format=args.format,
                key=None if args.key == "none" else args.key, config=_client_config(args),
                progress=False if args.no_progress else None, **live,
            )
        except KeyboardInterrupt as e:
            partial = getattr(e, "report", None)
            if partial is None:
                raise
            print(f"pktstream: interrupted; {partial}", file=sys.stderr)
            return 130
        print(report, file=sys.stderr)
        return 0
    if out and out.endswith((".pcap", ".cap")):
        from ._live import capture_to_pcap

        s = capture_to_pcap(args.interface, out, **live)
        print(f"wrote {s['written']:,} packets to {out}{' (interrupted)' if s['interrupted'] else ''}; "
              f"{_capture_stats(s)}", file=sys.stderr)
        return 0
    from ._live import capture

    reader = capture(args.interface, **live)
    writer = None
    rows = 0
    with reader:
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except KeyboardInterrupt:
                    reader.stop()  # then drain what was captured before Ctrl-C
                    continue
                if batch is None:
                    break
                if out:
                    import pyarrow.parquet as pq

                    if writer is None:
                        writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
                    writer.write_batch(batch)
                else:
                    _print_rows(batch)
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
    where = f" to {out}" if out else ""
    print(f"wrote {rows:,} packets{where}; {_capture_stats(reader.stats)}", file=sys.stderr)
    return 0


def _capture_stats(s: dict) -> str:
    return (f"libpcap: {s.get('received', 0):,} received, {s.get('dropped_kernel', 0):,} dropped by the kernel, "
            f"{s.get('dropped_interface', 0):,} by the interface; pktstream dropped {s.get('dropped_pktstream', 0):,}")


def _consume(args: argparse.Namespace) -> int:
    from ._kafka import Consumer

    schema = None
    if args.schema:
        import pyarrow.parquet as pq

        schema = pq.read_schema(args.schema)
    written = 0
    writer = None
    out = None if args.output in (None, "-") else args.output
    with Consumer(
        args.topic,
        group_id=args.group,
        bootstrap_servers=args.bootstrap_servers,
        format=args.format,
        schema=schema,
        config=_client_config(args),
    ) as consumer:
        idle = 0.0
        try:
            while args.max is None or written < args.max:
                want = 65_536 if args.max is None else min(65_536, args.max - written)
                batch = consumer.read_batch(want, timeout=1.0)
                if not batch.num_rows:
                    idle += 1.0
                    if args.idle_timeout is not None and idle >= args.idle_timeout:
                        break
                    continue
                idle = 0.0
                if out is not None:
                    import pyarrow.parquet as pq

                    if writer is None:
                        writer = pq.ParquetWriter(out, batch.schema)
                    writer.write_batch(batch)
                else:
                    _print_rows(batch)
                written += batch.num_rows
                if args.group is not None:
                    consumer.commit()  # after the rows were written: at-least-once
        finally:
            if writer is not None:
                writer.close()
    if out is not None:
        print(f"wrote {written:,} rows to {out}", file=sys.stderr)
    return 0


def _print_rows(batch) -> None:  # type: ignore[no-untyped-def]
    for row in batch.to_pylist():
        row["_key"] = row["_key"].hex() if isinstance(row.get("_key"), bytes) else row.get("_key")
        print(json.dumps({k: v for k, v in row.items() if v is not None}, default=_json_default))


def _json_default(v: object) -> str:
    iso = getattr(v, "isoformat", None)
    return iso() if callable(iso) else str(v)


def _group_limit(value: str) -> Optional[int]:
    """``--max-group-events``: a non-negative integer, or ``none`` for no limit."""
    if value.strip().lower() in ("none", "off"):
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of events or 'none', not {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, not {n}")
    return n


def _distances(args: argparse.Namespace) -> int:
    from .pipelines import DEFAULT_FEATURES, netflow_distances

    try:
        report = netflow_distances(
            args.in_topic,
            args.out_topic,
            bootstrap_servers=args.bootstrap_servers,
            group_id=args.group,
            key=args.key,
            id=args.id,
            time=args.time,
            features=args.features.split(",") if args.features else DEFAULT_FEATURES,
            window=args.window,
            allowed_lateness=args.allowed_lateness,
            metric=args.metric,
            normalize=args.normalize,
            top_k=args.top_k,
            max_distance=args.max_distance,
            max_group_events=args.max_group_events,
            on_large_group=args.on_large_group,
            max_events=args.max_events,
            idle_timeout=args.idle_timeout,
            config=_client_config(args),
        )
    except KeyboardInterrupt as e:
        partial = getattr(e, "report", None)
        if partial is not None:
            print(f"pktstream: interrupted; {partial}", file=sys.stderr)
        raise
    print(report)
    return 0


def _archive(args: argparse.Namespace) -> int:
    from .archive import archive

    # Ctrl-C and SIGTERM (systemd, kill) both end the archiver cleanly: open files published and
    # committed. Set explicitly: a process started in the background inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler of its own.
    previous = {s: signal.signal(s, signal.default_int_handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = archive(
            args.topic,
            args.output,
            bootstrap_servers=args.bootstrap_servers,
            group_id=args.group,
            roll_packets=args.roll_packets,
            roll_seconds=args.roll_seconds,
            timestamp_unit=args.timestamp_unit,
            idle_timeout=args.idle_timeout,
            max_packets=args.max,
            config=_client_config(args),
        )
    except KeyboardInterrupt as e:
        partial = getattr(e, "report", None)
        if partial is not None:
            print(f"pktstream: interrupted; archived {partial}", file=sys.stderr)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"archived {report} to {args.output}", file=sys.stderr)
    return 0


def _query(args: argparse.Namespace) -> int:
    from .archive import query

    n = query(
        args.directory,
        args.output,
        start=args.start,
        end=args.end,
        src_ip=args.src_ip,
        dst_ip=args.dst_ip,
        port=args.port,
        proto=args.proto,
        bpf=args.bpf,
    )
    print(f"wrote {n:,} packets to {args.output}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run

    return run(args.file, partitions=args.partitions, fmt=args.format, progress=False if args.no_progress else None)


def _connection(args: argparse.Namespace) -> Dict[str, Any]:
    """The ``-b``, ``-X`` and ``--timeout`` options as keyword arguments of the admin functions."""
    return {"bootstrap_servers": args.bootstrap_servers, "config": _client_config(args),
            "timeout": args.timeout}


def _topics(args: argparse.Namespace) -> int:
    """``pktstream topics``: list, describe, create or delete topics (``kafka-topics``)."""
    from . import admin

    conn = _connection(args)
    if args.create:
        if not args.partitions:
            raise ValueError("--create needs --partitions N")
        created = admin.create_topic(args.create, partitions=args.partitions,
                                     replication_factor=args.replication_factor,
                                     topic_config=_kafka_config(args.topic_config), **conn)
        if created:
            print(f"Created topic {args.create} ({args.partitions} partition{'s' if args.partitions != 1 else ''}).")
            return 0
        print(f"pktstream: topic {args.create} already exists", file=sys.stderr)
        return 0 if args.if_not_exists else 1
    if args.delete:
        if admin.delete_topic(args.delete, **conn):
            print(f"Deleted topic {args.delete}.")
            return 0
        print(f"pktstream: topic {args.delete} does not exist", file=sys.stderr)
        return 1
    if args.describe:
        print(admin.describe_topic(args.describe, **conn))
        return 0
    for name in admin.list_topics(internal=args.internal, **conn):
        print(name)
    return 0


def _groups(args: argparse.Namespace) -> int:
    """``pktstream groups``: list consumer groups, or one group's offsets and lag."""
    from . import admin

    conn = _connection(args)
    if args.describe:
        lag = admin.group_lag(args.describe, topics=args.topic, **conn).to_pylist()
        if not lag:
            print(f"pktstream: group {args.describe} has no committed offsets", file=sys.stderr)
            return 1
        rows = [(args.describe, r["topic"], r["partition"], _dash(r["committed"]), r["end"], _dash(r["lag"]))
                for r in lag]
        _table(("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"), rows)
        return 0
    groups = admin.list_groups(**conn)
    _table(("GROUP", "STATE", "MEMBERS"), [(g.name, g.state, g.members) for g in groups])
    return 0


def _dash(v: Optional[int]) -> object:
    return "-" if v is None else v


def _table(header: tuple, rows: List[tuple]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def _broker(args: argparse.Namespace) -> int:
    from .broker import run

    return run(args)


class _VersionAction(argparse.Action):
    """``--version``: one line per component, printed as is (argparse's own action re-wraps it)."""

    def __init__(self, option_strings: Any, dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pktstream", description="Network packets into Apache Arrow, fast.")
    p.add_argument("--version", action=_VersionAction, help="print the versions of pktstream, librdkafka and libpcap")
    sub = p.add_subparsers(dest="command", required=True)

    i = sub.add_parser("inspect", help="summarise a capture file (format, counts, time span, protocols, talkers)")
    i.add_argument("file")
    i.add_argument("-n", "--count", type=int, default=10, help="packets to list (default 10)")
    i.add_argument("--top", type=int, default=10, help="rows in the protocol/talker tables")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.add_argument("--bpf", metavar="EXPR", help='keep only the packets passing this BPF filter '
                   '(tcpdump syntax, as in tcpdump -r FILE EXPR), e.g. "udp port 53"')
    i.add_argument("--no-progress", action="store_true")
    i.set_defaults(func=_inspect)

    c = sub.add_parser("convert", help="write the packet table of a capture to Parquet, or the "
                       "packets to a pcap (out.pcap, out.pcap.gz; with --bpf: tcpdump -r FILE -w OUT EXPR)")
    c.add_argument("file")
    c.add_argument("output", help="out.parquet, or out.pcap / out.pcap.gz for the packets themselves")
    c.add_argument("--columns", help="comma-separated projection (default: every column)")
    c.add_argument("--compression", default="zstd", help="parquet codec (default zstd)")
    c.add_argument("--batch-size", type=int, default=65536)
    c.add_argument("--addresses", choices=["string", "binary"], default="string")
    c.add_argument("--strict", action="store_true", help="fail on a truncated or corrupt tail")
    c.add_argument("--bpf", metavar="EXPR", help='keep only the packets passing this BPF filter '
                   '(tcpdump syntax, as in tcpdump -r FILE EXPR), e.g. "udp port 53"')
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_convert)

    s = sub.add_parser("schema", help="print the packet schema")
    s.add_argument("--addresses", choices=["string", "binary"], default="string")
    s.set_defaults(func=_schema)

    k = sub.add_parser("produce", help="stream a capture file into a Kafka topic")
    k.add_argument("file")
    k.add_argument("--topic", "-t", required=True)
    k.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    k.add_argument("--format", "-f", choices=["json", "csv", "raw", "arrow"], default="json")
    k.add_argument("--key", default="flow", help='"flow" (default), "timestamp", a column name, or "none"')
    k.add_argument("--columns", help="comma-separated columns to send (default: every column)")
    k.add_argument("--timestamp-unit", choices=["s", "ms", "us", "ns"], default="us")
    k.add_argument("--rows-per-message", type=int, default=10_000, help="rows per arrow message")
    k.add_argument("--create-topic", type=int, metavar="PARTITIONS", help="create the topic first")
    k.add_argument("--bpf", metavar="EXPR", help='keep only the packets passing this BPF filter '
                   '(tcpdump syntax, as in tcpdump -r FILE EXPR), e.g. "udp port 53"')
    _add_client_config(k)
    k.add_argument("--no-progress", action="store_true")
    k.set_defaults(func=_produce)

    fl = sub.add_parser("flows", help="meter bidirectional flows of a capture or an interface into Parquet or a "
                                      "Kafka topic")
    fl.add_argument("file", nargs="?", help="a capture file (or --interface)")
    fl.add_argument("-i", "--interface", help="meter a live capture of this interface instead (Ctrl-C ends it, "
                                              "flushing the active flows)")
    fl.add_argument("--bpf", metavar="EXPR", help='keep only the packets passing this BPF filter (tcpdump '
                    'syntax), of the file or, with --interface, in the kernel')
    fl.add_argument("-c", "--count", type=int, help="--interface: stop after this many packets")
    fl.add_argument("--duration", type=float, help="--interface: stop after this many seconds")
    fl.add_argument("--snaplen", type=int, default=65535, help="--interface: bytes kept of each packet")
    fl.add_argument("--promisc", action="store_true", help="--interface: promiscuous mode")
    fl.add_argument("--buffer-size", type=int, help="--interface: kernel buffer in bytes")
    fl.add_argument("--timeout", type=float, default=0.1,
                    help="--interface: libpcap read timeout; idle flows end by the clock at this pace")
    where = fl.add_mutually_exclusive_group()
    where.add_argument("--output", "-o", help="out.parquet (default: print the top flows by bytes)")
    where.add_argument("--topic", "-t", help="produce the flows to this Kafka topic as JSON")
    fl.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    fl.add_argument("--layout", choices=["native", "suricata"],
                    help="native flow columns, or the netflow pipeline's events (default: native for --output, "
                         "suricata for --topic)")
    fl.add_argument("--ipv6", choices=["skip", "null"], default="skip",
                    help="suricata layout: leave IPv6 flows out (default) or send them with null IPv4 addresses")
    fl.add_argument("--idle-timeout", type=float, default=120.0, help="seconds (default 120, NFStream's)")
    fl.add_argument("--active-timeout", type=float, default=1800.0, help="seconds (default 1800, NFStream's)")
    fl.add_argument("--tcp-close", action="store_true", help="end TCP flows on RST or FIN from both sides")
    fl.add_argument("--statistics", action="store_true", help="add packet size and inter-arrival statistics")
    fl.add_argument("--server-name", action="store_true", help="add requested_server_name (SNI, Host, DNS name)")
    fl.add_argument("--accounting", choices=["wire", "ip", "payload"], default="wire", help="what bytes count")
    fl.add_argument("--max-flows", type=int, default=1_000_000, help="active flows held at most")
    fl.add_argument("--strict", action="store_true", help="fail on a truncated or corrupt tail")
    fl.add_argument("--top", type=int, default=10, help="rows of the top-flows table")
    fl.add_argument("--compression", default="zstd", help="parquet codec (default zstd)")
    fl.add_argument("--key", help='--topic: message key column, or "none" (default: src_ip4 for suricata, '
                                  'the Community ID for native)')
    fl.add_argument("--create-topic", type=int, metavar="PARTITIONS", help="create the topic first")
    _add_client_config(fl)
    fl.add_argument("--no-progress", action="store_true")
    fl.set_defaults(func=_flows)

    lc = sub.add_parser("capture", help="capture live from an interface into Kafka, Parquet, pcap or JSON lines")
    lc.add_argument("-i", "--interface", required=True, help='interface ("any": all interfaces, Linux)')
    lc.add_argument("--bpf", help='BPF filter expression, e.g. "udp port 53"')
    lc.add_argument("-c", "--count", type=int, help="stop after this many packets")
    lc.add_argument("--duration", type=float, help="stop after this many seconds")
    lc.add_argument("--output", "-o", help="out.parquet or out.pcap (default: JSON lines on stdout)")
    lc.add_argument("--topic", "-t", help="produce to this Kafka topic instead")
    lc.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    lc.add_argument("--format", "-f", choices=["raw", "json", "csv", "arrow"], default="raw")
    lc.add_argument("--key", default="flow", help='"flow" (default), "timestamp", a column name, or "none"')
    _add_client_config(lc)
    lc.add_argument("--snaplen", type=int, default=65535)
    lc.add_argument("--promisc", action="store_true", help="promiscuous mode")
    lc.add_argument("--buffer-size", type=int, help="kernel buffer in bytes")
    lc.add_argument("--timeout", type=float, default=0.1, help="libpcap read timeout / batch flush (seconds)")
    lc.add_argument("--immediate", action="store_true", help="deliver each packet at once")
    lc.add_argument("--no-progress", action="store_true")
    lc.set_defaults(func=_capture)

    r = sub.add_parser("consume", help="read a Kafka topic into Parquet or JSON lines")
    r.add_argument("--topic", "-t", required=True, action="append", help="repeat for several topics")
    r.add_argument("--group", "-g", help="consumer group (commits after writing); default: read all, no group")
    r.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    r.add_argument("--format", "-f", choices=["json", "raw", "arrow"], default="json")
    r.add_argument("--schema", help="a Parquet file whose schema the JSON values decode into")
    r.add_argument("--max", type=int, help="stop after this many rows")
    r.add_argument("--idle-timeout", type=float, default=5.0, help="stop after this many idle seconds")
    r.add_argument("--output", "-o", help="out.parquet, or - for JSON lines on stdout (default)")
    _add_client_config(r)
    r.set_defaults(func=_consume)

    w = sub.add_parser("distances", help="windowed pairwise distances of JSON events, Kafka to Kafka (at-least-once)")
    w.add_argument("--in-topic", "-i", required=True, action="append", help="input topic (repeatable)")
    w.add_argument("--out-topic", "-o", required=True)
    w.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    w.add_argument("--group", "-g", default="pktstream-netflow-distances", help="consumer group")
    w.add_argument("--key", default="src_ip4", help="group field (default src_ip4)")
    w.add_argument("--id", default="eventid", help="event id field (default eventid)")
    w.add_argument("--time", default="@timestamp", help="event time field (default @timestamp)")
    w.add_argument("--features", help="comma-separated numeric fields (default: the netflow sizes and ports)")
    w.add_argument("--window", default="5s", help="tumbling window (default 5s)")
    w.add_argument("--allowed-lateness", default="0s")
    w.add_argument("--metric", default="euclidean", choices=["euclidean", "sqeuclidean", "cityblock", "chebyshev",
                                                             "cosine"])
    w.add_argument("--normalize", choices=["log1p"], help="per-event feature transform")
    w.add_argument("--top-k", type=int, help="keep only pairs among each event's k nearest")
    w.add_argument("--max-distance", type=float, help="keep only pairs at most this far apart")
    w.add_argument("--max-group-events", type=_group_limit, default=4_000, metavar="N",
                   help="a key's window with more events is not expanded to all pairs (see --on-large-group); "
                        "default 4000 (~8M pairs, ~1 GB), 'none' for no limit")
    w.add_argument("--on-large-group", choices=["top_k", "skip"], default="top_k",
                   help="over --max-group-events: each event's top-k nearest only (k = --top-k or 10), or skip "
                        "the group (default top_k); either way counted and logged")
    w.add_argument("--max-events", type=int, help="stop after this many input messages")
    w.add_argument("--idle-timeout", type=float, help="stop (closing every window) after this many idle seconds")
    _add_client_config(w)
    w.set_defaults(func=_distances)

    a = sub.add_parser("archive", help="archive a raw topic into rolling pcap files (Metron's pcap backend)")
    a.add_argument("--topic", "-t", required=True)
    a.add_argument("--output", "-o", required=True, help="directory for the rolled files")
    a.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    a.add_argument("--group", "-g", default="pktstream-archive")
    a.add_argument("--roll-packets", type=int, default=1000)
    a.add_argument("--roll-seconds", type=float, default=300.0)
    a.add_argument("--timestamp-unit", choices=["s", "ms", "us", "ns"], default="us")
    a.add_argument("--idle-timeout", type=float, help="stop after this many seconds without messages")
    a.add_argument("--max", type=int, help="stop after this many packets")
    _add_client_config(a)
    a.set_defaults(func=_archive)

    q = sub.add_parser("query", help="select packets from rolled pcap files into one time-ordered pcap")
    q.add_argument("directory")
    q.add_argument("--output", "-o", required=True)
    q.add_argument("--start", help="ISO-8601 time (inclusive) or epoch nanoseconds")
    q.add_argument("--end", help="ISO-8601 time (exclusive) or epoch nanoseconds")
    q.add_argument("--src-ip")
    q.add_argument("--dst-ip")
    q.add_argument("--port", type=int, help="source or destination port")
    q.add_argument("--proto", type=int, help="IP protocol number (6 tcp, 17 udp, ...)")
    q.add_argument("--bpf", help="a tcpdump filter expression, e.g. 'tcp port 443'")
    q.set_defaults(func=_query)

    d = sub.add_parser("demo", help="start a local broker, stream a capture through Kafka and back into Arrow")
    d.add_argument("file", nargs="?", help="capture file (default: the bundled sample)")
    d.add_argument("--format", "-f", choices=["json", "raw", "arrow"], default="json")
    d.add_argument("--partitions", type=int, default=3)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_demo)

    t = sub.add_parser("topics", help="list, describe, create or delete Kafka topics (like kafka-topics)")
    what = t.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="topic names (the default)")
    what.add_argument("--describe", metavar="TOPIC", help="partitions, leaders, replicas, offsets, configs")
    what.add_argument("--create", metavar="TOPIC")
    what.add_argument("--delete", metavar="TOPIC")
    t.add_argument("--partitions", type=int, help="partitions of the created topic")
    t.add_argument("--replication-factor", type=int, default=1)
    t.add_argument("--config", dest="topic_config", action="append", metavar="KEY=VALUE",
                   help="topic setting of the created topic, e.g. retention.ms=3600000")
    t.add_argument("--if-not-exists", action="store_true", help="--create succeeds if the topic exists")
    t.add_argument("--internal", action="store_true", help="--list includes internal topics")
    t.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    t.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the cluster")
    _add_client_config(t)
    t.set_defaults(func=_topics)

    g = sub.add_parser("groups", help="list consumer groups, or show a group's lag (like kafka-consumer-groups)")
    gw = g.add_mutually_exclusive_group()
    gw.add_argument("--list", action="store_true", help="groups with state and members (the default)")
    gw.add_argument("--describe", metavar="GROUP", help="committed offset, end offset and lag per partition")
    g.add_argument("--topic", "-t", action="append", help="--describe only these topics (repeatable)")
    g.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the cluster")
    _add_client_config(g)
    g.set_defaults(func=_groups)

    from .broker import add_arguments  # stdlib only: cheap

    b = sub.add_parser("broker", help="run a local Kafka broker in the foreground (Tansu; Apache Kafka with --kafka)")
    add_arguments(b)
    b.set_defaults(func=_broker)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FileNotFoundError as e:
        print(f"pktstream: {e.filename or e}: no such file", file=sys.stderr)
    except (PktstreamError, ValueError, OSError) as e:
        print(f"pktstream: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("pktstream: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
