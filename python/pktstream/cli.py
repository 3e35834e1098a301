"""The ``pktstream`` command line.

Examples:
    pktstream inspect capture.pcapng          # capinfos-style summary + first packets
    pktstream convert capture.pcap out.parquet --compression zstd
    pktstream schema                          # the packet columns
    pktstream broker --topic packets:3        # a local Kafka-compatible broker on 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from . import __version__
from .exceptions import PktstreamError


def _inspect(args: argparse.Namespace) -> int:
    from ._inspect import render, summarize

    s = summarize(args.file, head=args.count, progress=None if not args.no_progress else False)
    if args.json:
        print(json.dumps(s.as_dict(), indent=2, default=str))
    else:
        print(render(s, top=args.top))
    return 0


def _convert(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from ._progress import Progress
    from ._reader import iter_batches

    columns = args.columns.split(",") if args.columns else None
    reader = iter_batches(args.file, columns=columns, batch_size=args.batch_size,
                          addresses=args.addresses, strict=args.strict)
    rows = 0
    with reader, Progress(reader.file_size, "converting",
                          False if args.no_progress else None) as bar:
        with pq.ParquetWriter(args.output, reader.schema, compression=args.compression) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
                bar.update(reader.stats["bytes_read"])
    print(f"wrote {rows:,} packets to {args.output}", file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from ._reader import schema

    for f in schema(addresses=args.addresses):
        print(f"{f.name:<16} {f.type}")
    return 0


def _broker(args: argparse.Namespace) -> int:
    from .broker import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pktstream", description="Network packets into Apache Arrow, fast.")
    p.add_argument("--version", action="version", version=f"pktstream {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    i = sub.add_parser("inspect", help="summarise a capture file (format, counts, time span, protocols, talkers)")
    i.add_argument("file")
    i.add_argument("-n", "--count", type=int, default=10, help="packets to list (default 10)")
    i.add_argument("--top", type=int, default=10, help="rows in the protocol/talker tables")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.add_argument("--no-progress", action="store_true")
    i.set_defaults(func=_inspect)

    c = sub.add_parser("convert", help="write the packet table of a capture to Parquet")
    c.add_argument("file")
    c.add_argument("output")
    c.add_argument("--columns", help="comma-separated projection (default: every column)")
    c.add_argument("--compression", default="zstd", help="parquet codec (default zstd)")
    c.add_argument("--batch-size", type=int, default=65536)
    c.add_argument("--addresses", choices=["string", "binary"], default="string")
    c.add_argument("--strict", action="store_true", help="fail on a truncated or corrupt tail")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_convert)

    s = sub.add_parser("schema", help="print the packet schema")
    s.add_argument("--addresses", choices=["string", "binary"], default="string")
    s.set_defaults(func=_schema)

    from .broker import add_arguments  # stdlib only: cheap

    b = sub.add_parser("broker", help="run a local Kafka-compatible broker (Tansu) in the foreground")
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
