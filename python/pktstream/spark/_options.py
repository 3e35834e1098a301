"""The ``pktstream`` source's options: Spark's Kafka source's names and meanings, checked once.

Users move jobs between ``format("kafka")`` and ``format("pktstream")`` by changing one word, so
the options are Spark's (``subscribe``, ``assign``, ``subscribePattern``, ``startingOffsets``,
``maxOffsetsPerTrigger``...), validated as Spark validates them. An option Spark accepts that
pktstream cannot honour is refused with the reason, and so is any option neither of them knows: a
typo must not silently change what a query reads.

Offsets by time (``startingTimestamp`` > ``startingOffsetsByTimestamp`` > ``startingOffsets``, and
the ``ending`` twins for batch reads) are looked up with librdkafka's offsets-for-times: per
partition, the earliest offset whose message timestamp is at or after the time. A partition with
no such message starts, by ``startingOffsetsByTimestampStrategy``, nowhere (``error``, the
default: the query fails and says which partition) or at its latest offset (``latest``); it ends
at its latest offset. ``includeHeaders=true`` adds Spark's ``headers`` column.

``kafka.*`` options go to librdkafka after :mod:`._java_config` translated the Java client's keys.
Secrets among them never leave :class:`KafkaOptions` in its ``repr`` or in error messages.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from .._types import AddressFormat, ConsumeFormat, TimestampUnit
from ._decode import column_list, value_schema
from ._java_config import redacted, translate

__all__ = ["KafkaOptions", "Offsets", "SOURCE_OPTIONS", "REFUSED_OPTIONS"]

log = logging.getLogger("pktstream.spark")

Offsets = Dict[str, Dict[str, int]]

#: Options the source reads (lower case, as Spark passes them case-insensitively).
SOURCE_OPTIONS = {
    # Spark's Kafka source
    "subscribe", "assign", "subscribepattern", "startingoffsets", "endingoffsets", "failondataloss",
    "minpartitions", "maxrecordsperpartition", "maxoffsetspertrigger", "minoffsetspertrigger", "maxtriggerdelay",
    "kafkaconsumer.polltimeoutms", "includeheaders", "startingoffsetsbytimestamp", "endingoffsetsbytimestamp",
    "startingtimestamp", "endingtimestamp", "startingoffsetsbytimestampstrategy",
    # pktstream's own
    "format", "schema", "columns", "addresses", "timestampunit", "polltimeoutms", "timeoutms",
}

#: Options Spark's Kafka source accepts and pktstream does not, with the reason.
REFUSED_OPTIONS = {
    "groupidprefix": "pktstream reads assigned partitions without a consumer group, so there is no group id to "
    "prefix; drop the option",
    "fetchoffset.numretries": "librdkafka retries offset look-ups itself; bound them with timeoutMs",
    "fetchoffset.retryintervalms": "librdkafka retries offset look-ups itself; bound them with timeoutMs",
}

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|sec|second|seconds|m|min|minute|minutes|h|hour|hours|d|day|days)?\s*$",
                       re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
                 "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


def duration(text: str, name: str) -> float:
    """A Spark time string (``"15m"``, ``"30s"``, ``"500ms"``, bare numbers are milliseconds) in seconds.

    Example:
        >>> duration("15m", "maxTriggerDelay"), duration("250", "maxTriggerDelay")
        (900.0, 0.25)
    """
    m = _DURATION.match(str(text))
    if m is None:
        raise ValueError(f"option {name} must be a duration like 15m, 30s or 500ms, not {text!r}")
    return float(int(m.group(1)) * _UNIT_SECONDS[(m.group(2) or "ms").lower()])


@dataclass(frozen=True)
class KafkaOptions:
    """The source's options, parsed once on the driver (picklable, no clients).

    ``topics`` are the subscribed topics (``subscribe``) or those of ``assign``; with
    ``subscribePattern`` they are found again at every planning (:meth:`current_topics`).
    ``config`` holds librdkafka keys (Java keys translated) and is hidden from ``repr``.

    Example:
        >>> o = KafkaOptions.parse({"kafka.bootstrap.servers": "127.0.0.1:9092", "subscribe": "a,b",
        ...                         "kafka.sasl.password": "hunter2"})
        >>> o.topics, "hunter2" in repr(o)
        (('a', 'b'), False)
    """

    bootstrap_servers: str
    topics: Tuple[str, ...] = ()
    pattern: Optional[str] = None
    assign: Optional[Tuple[Tuple[str, int], ...]] = None
    starting_offsets: str = "latest"
    ending_offsets: str = "latest"
    format: str = "json"
    schema: Optional[str] = None
    columns: Optional[Tuple[str, ...]] = None
    addresses: str = "string"
    timestamp_unit: str = "us"
    max_offsets_per_trigger: Optional[int] = None
    min_offsets_per_trigger: Optional[int] = None
    max_trigger_delay: float = 900.0
    max_records_per_partition: int = 1_000_000
    min_partitions: int = 0
    poll_timeout: float = 120.0
    timeout: float = 30.0
    fail_on_data_loss: bool = True
    #: ``startingTimestamp`` / ``endingTimestamp`` (ms since the epoch, every partition).
    starting_timestamp: Optional[int] = None
    ending_timestamp: Optional[int] = None
    #: ``startingOffsetsByTimestamp`` / ``endingOffsetsByTimestamp``: ``{topic: {partition: ms}}``.
    starting_by_timestamp: Optional[Offsets] = None
    ending_by_timestamp: Optional[Offsets] = None
    #: ``startingOffsetsByTimestampStrategy``: ``error`` or ``latest``.
    timestamp_strategy: str = "error"
    include_headers: bool = False
    config: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: The value schema as Spark parsed it (set by the readers from the schema Spark hands them).
    values: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={getattr(self, k)!r}" for k in self.__dataclass_fields__ if k not in ("config", "values")
        )
        return f"KafkaOptions({shown}, config={redacted(self.config)!r})"

    @classmethod
    def parse(cls, options: Mapping[str, str], *, streaming: Optional[bool] = True) -> "KafkaOptions":
        """Checks and parses the options of ``spark.read(Stream).format("pktstream")``;
        ``streaming=None`` (``DataSource.schema()``, which does not know yet) skips the checks
        that differ between streaming and batch reads."""
        opts = {k.lower(): str(v) for k, v in options.items()}
        for k in opts:
            if k in REFUSED_OPTIONS:
                raise ValueError(f"pktstream: option {_spark_name(k, options)} is not supported: {REFUSED_OPTIONS[k]}")
            if not k.startswith("kafka.") and k not in SOURCE_OPTIONS:
                raise ValueError(
                    f"pktstream: unknown option {_spark_name(k, options)!r} (see docs/spark.md; librdkafka settings "
                    "take the prefix kafka.)"
                )
        servers = opts.get("kafka.bootstrap.servers")
        if not servers:
            raise ValueError("the pktstream source needs option kafka.bootstrap.servers")
        topics, pattern, assign = _strategy(opts)
        include_headers = _flag(opts.get("includeheaders", "false"), "includeHeaders")
        strategy = opts.get("startingoffsetsbytimestampstrategy", "error").strip().lower()
        if strategy not in ("error", "latest"):
            raise ValueError(f"option startingOffsetsByTimestampStrategy must be error or latest, not {strategy!r}")
        if streaming:
            for k in ("endingoffsetsbytimestamp", "endingtimestamp"):
                if k in opts:
                    raise ValueError(f"option {_spark_name(k, options)} is not valid in streaming queries (as in "
                                     "Spark's Kafka source)")
        config = {k[len("kafka."):]: v for k, v in options.items() if k.lower().startswith("kafka.")}
        config = {k: v for k, v in config.items() if k.lower() != "bootstrap.servers"}
        config = translate(config)
        cols = column_list(opts.get("columns"))
        starting = opts.get("startingoffsets", "latest" if streaming else "earliest").strip()
        ending = opts.get("endingoffsets", "latest").strip()
        if streaming is not None:
            _check_offsets(starting, ending, streaming, "endingoffsets" in opts)
        mx, mn = _positive(opts, "maxoffsetspertrigger"), _positive(opts, "minoffsetspertrigger")
        if mx is not None and mn is not None and mn > mx:
            raise ValueError(f"option minOffsetsPerTrigger ({mn}) is higher than maxOffsetsPerTrigger ({mx})")
        if streaming is False:
            for k in ("maxoffsetspertrigger", "minoffsetspertrigger", "maxtriggerdelay"):
                if k in opts:
                    log.warning("pktstream: option %s is ignored in batch queries (as in Spark's Kafka source)",
                                _spark_name(k, options))
        poll = opts.get("kafkaconsumer.polltimeoutms", opts.get("polltimeoutms", "120000"))
        return cls(
            bootstrap_servers=servers,
            topics=topics,
            pattern=pattern,
            assign=assign,
            starting_offsets=starting,
            ending_offsets=ending,
            format=opts.get("format", "json").lower(),
            schema=opts.get("schema"),
            columns=tuple(cols) if cols else None,
            addresses=opts.get("addresses", "string"),
            timestamp_unit=opts.get("timestampunit", "us"),
            max_offsets_per_trigger=mx,
            min_offsets_per_trigger=mn,
            max_trigger_delay=duration(opts.get("maxtriggerdelay", "15m"), "maxTriggerDelay"),
            max_records_per_partition=_positive(opts, "maxrecordsperpartition") or 1_000_000,
            min_partitions=_positive(opts, "minpartitions") or 0,
            poll_timeout=int(poll) / 1000.0,
            timeout=int(opts.get("timeoutms", 30_000)) / 1000.0,
            fail_on_data_loss=_flag(opts.get("failondataloss", "true"), "failOnDataLoss"),
            starting_timestamp=_millis(opts, "startingtimestamp"),
            ending_timestamp=_millis(opts, "endingtimestamp"),
            starting_by_timestamp=_times_json(opts, "startingoffsetsbytimestamp"),
            ending_by_timestamp=_times_json(opts, "endingoffsetsbytimestamp"),
            timestamp_strategy=strategy,
            include_headers=include_headers,
            config=config,
        )

    def native(self, **extra: str) -> Any:
        """A new native consumer for these options (call on the worker that uses it); ``extra``
        librdkafka keys override the user's."""
        from pktstream import _native

        values = self.values
        if values is None:
            values = value_schema(self.format, self.schema, self.columns, self.addresses)
        # Spark's options are strings: the native consumer checks these three (a ValueError).
        return _native.NativeConsumer(
            bootstrap_servers=self.bootstrap_servers,
            format=cast(ConsumeFormat, self.format),
            schema=None if self.format == "raw" else values,
            columns=list(self.columns) if self.columns and self.format == "raw" else None,
            addresses=cast(AddressFormat, self.addresses),
            timestamp_unit=cast(TimestampUnit, self.timestamp_unit),
            config={**self.config, **extra},
            headers=self.include_headers,
        )

    def current_topics(self) -> Tuple[str, ...]:
        """The topics to read now: ``subscribe``/``assign``'s, or those matching ``subscribePattern``
        (Java's ``Pattern.matches``: the whole name must match)."""
        if self.pattern is None:
            return self.topics
        from pktstream import admin

        regex = re.compile(self.pattern)
        names = admin.list_topics(bootstrap_servers=self.bootstrap_servers, config=dict(self.config),
                                  timeout=self.timeout)
        return tuple(t for t in names if regex.fullmatch(t))

    def watermarks(self) -> Offsets:
        """``{topic: {partition: end offset}}`` now (the high watermarks) of the partitions read."""
        topics = self.current_topics()
        if not topics:
            return {}
        consumer = self.native()
        try:
            ends = consumer.assign_all(list(topics), self.timeout)
        finally:
            consumer.close()
        wanted = set(self.assign) if self.assign is not None else None
        out: Offsets = {t: {} for t in topics}
        for topic, partition, end in ends:
            if wanted is None or (topic, int(partition)) in wanted:
                out[topic][str(partition)] = int(end)
        if wanted is not None:
            missing = sorted(wanted - {(t, int(p)) for t, ps in out.items() for p in ps})
            if missing:
                raise ValueError(f"pktstream: assigned partitions {missing} do not exist")
        return out

    def lows(self, partitions: Sequence[Tuple[str, int]]) -> Dict[Tuple[str, int], int]:
        """``{(topic, partition): earliest available offset}`` (the low watermarks) now."""
        if not partitions:
            return {}
        consumer = self.native()
        try:
            return {(t, p): int(consumer.watermarks(t, p, self.timeout)[0]) for t, p in partitions}
        finally:
            consumer.close()

    def earliest(self, latest: Offsets) -> Offsets:
        """The earliest available offset of each partition of ``latest``."""
        lows = self.lows([(t, int(p)) for t, ps in latest.items() for p in ps])
        return {t: {p: lows.get((t, int(p)), 0) for p in ps} for t, ps in latest.items()}

    def starting(self, latest: Offsets, earliest: Offsets) -> Offsets:
        """The starting offsets: by ``startingTimestamp``, else ``startingOffsetsByTimestamp``, else
        ``startingOffsets`` (Spark's precedence)."""
        if self.starting_timestamp is not None or self.starting_by_timestamp is not None:
            return self.by_time(latest, self.starting_timestamp, self.starting_by_timestamp, ending=False)
        return self.resolve(self.starting_offsets, latest, earliest)

    def ending(self, latest: Offsets, earliest: Offsets) -> Offsets:
        """The ending offsets of a batch read: by ``endingTimestamp``, else
        ``endingOffsetsByTimestamp``, else ``endingOffsets``."""
        if self.ending_timestamp is not None or self.ending_by_timestamp is not None:
            return self.by_time(latest, self.ending_timestamp, self.ending_by_timestamp, ending=True)
        return self.resolve(self.ending_offsets, latest, earliest)

    def by_time(self, latest: Offsets, every: Optional[int], per_partition: Optional[Offsets], *,
                ending: bool) -> Offsets:
        """Offsets for times for the partitions of ``latest``: ``every`` ms for all of them, else
        ``per_partition`` (which must name exactly those partitions, as Spark requires). The
        earliest offset at or after the time, capped at ``latest``; where there is none, ``latest``
        for an end, and for a start what ``startingOffsetsByTimestampStrategy`` says."""
        what = ("endingTimestamp" if every is not None else "endingOffsetsByTimestamp") if ending else (
            "startingTimestamp" if every is not None else "startingOffsetsByTimestamp")
        wanted = [(t, int(p)) for t, ps in latest.items() for p in ps]
        if every is not None:
            times = {tp: every for tp in wanted}
        else:
            times = {(t, int(p)): int(ms) for t, ps in (per_partition or {}).items() for p, ms in ps.items()}
            missing, extra = sorted(set(wanted) - set(times)), sorted(set(times) - set(wanted))
            if missing or extra:
                raise ValueError(
                    f"pktstream: option {what} must give a time for every partition read (as in Spark's Kafka "
                    f"source): missing {missing}, not read {extra}"
                )
        if not times:
            return {t: {} for t in latest}
        consumer = self.native()
        try:
            found = consumer.offsets_for_times([(t, p, ms) for (t, p), ms in times.items()], self.timeout)
        finally:
            consumer.close()
        out: Offsets = {t: {} for t in latest}
        for t, p, offset in found:
            end = int(latest[t][str(p)])
            if offset is None:
                if not ending and self.timestamp_strategy == "error":
                    raise ValueError(
                        f"pktstream: {what}: {t} [{p}] has no message with a timestamp at or after "
                        f"{times[(t, p)]} ms (its end offset is {end}); set the option "
                        "startingOffsetsByTimestampStrategy=latest to start such partitions at their latest offset"
                    )
                offset = end
            out[t][str(p)] = min(int(offset), end)
        return out

    def resolve(self, spec: str, latest: Offsets, earliest: Optional[Offsets] = None) -> Offsets:
        """``earliest`` / ``latest`` / JSON (``-2`` earliest, ``-1`` latest) as concrete offsets;
        partitions the JSON leaves out start at the earliest offset (``earliest``: the low
        watermarks; 0 when not given)."""
        first = earliest or {}

        def low(t: str, p: str) -> int:
            return int(first.get(t, {}).get(p, 0))

        if spec == "earliest":
            return {t: {p: low(t, p) for p in ps} for t, ps in latest.items()}
        if spec == "latest":
            return {t: dict(ps) for t, ps in latest.items()}
        given = _offsets_json(spec)
        out: Offsets = {}
        for t, ps in latest.items():
            out[t] = {}
            for p, end in ps.items():
                o = int(given.get(t, {}).get(p, -2))
                out[t][p] = low(t, p) if o == -2 else end if o == -1 else o
        return out


def _strategy(opts: Mapping[str, str]) -> Tuple[Tuple[str, ...], Optional[str], Optional[Tuple[Tuple[str, int], ...]]]:
    """(topics, pattern, assigned partitions) from exactly one of subscribe / subscribePattern / assign."""
    given = [k for k in ("subscribe", "subscribepattern", "assign") if k in opts]
    if len(given) != 1:
        which = "none" if not given else " and ".join(given)
        raise ValueError(
            "the pktstream source needs exactly one of the options subscribe (a comma-separated list of topics), "
            f"subscribePattern (a regex) or assign (JSON {{\"topic\": [0, 1]}}); got {which}"
        )
    if "subscribe" in opts:
        topics = tuple(t.strip() for t in opts["subscribe"].split(",") if t.strip())
        if not topics:
            raise ValueError("the pktstream source needs option subscribe (a comma-separated list of topics)")
        return topics, None, None
    if "subscribepattern" in opts:
        pattern = opts["subscribepattern"].strip()
        if not pattern:
            raise ValueError("option subscribePattern is empty")
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"option subscribePattern {pattern!r} is not a regular expression: {e}") from e
        return (), pattern, None
    try:
        parsed = json.loads(opts["assign"])
        pairs = tuple(sorted((str(t), int(p)) for t, ps in parsed.items() for p in ps))
    except (ValueError, AttributeError, TypeError) as e:
        raise ValueError(f"option assign must be JSON like {{\"topicA\": [0, 1], \"topicB\": [2]}}, not "
                         f"{opts['assign']!r}") from e
    if not pairs:
        raise ValueError("option assign names no partitions")
    return tuple(sorted({t for t, _ in pairs})), None, pairs


def _offsets_json(spec: str) -> Dict[str, Dict[str, int]]:
    try:
        given = json.loads(spec)
        return {str(t): {str(p): int(o) for p, o in ps.items()} for t, ps in given.items()}
    except (ValueError, AttributeError, TypeError) as e:
        raise ValueError(f"offsets must be earliest, latest or JSON like {{\"topic\": {{\"0\": 23}}}}: {e}") from e


def _check_offsets(starting: str, ending: str, streaming: bool, has_ending: bool) -> None:
    """Spark's rules: no ending offsets in streams; batch reads neither start at latest nor end at earliest."""
    if streaming and has_ending:
        raise ValueError("option endingOffsets is not valid in streaming queries (as in Spark's Kafka source)")
    if starting not in ("earliest", "latest"):
        start = _offsets_json(starting)
        if not streaming and any(o == -1 for ps in start.values() for o in ps.values()):
            raise ValueError("startingOffsets can't be latest (-1) for batch queries")
    elif starting == "latest" and not streaming:
        raise ValueError("startingOffsets can't be latest for batch queries (as in Spark's Kafka source)")
    if ending == "earliest":
        raise ValueError("endingOffsets can't be earliest (as in Spark's Kafka source)")
    if ending != "latest":
        end = _offsets_json(ending)
        if any(o == -2 for ps in end.values() for o in ps.values()):
            raise ValueError("endingOffsets can't be earliest (-2) for batch queries")


def _millis(opts: Mapping[str, str], key: str) -> Optional[int]:
    """A time in ms since the epoch (``startingTimestamp``), or None when not given."""
    if key not in opts:
        return None
    try:
        ms = int(opts[key].strip())
    except ValueError as e:
        raise ValueError(f"option {_NAMES[key]} must be milliseconds since the epoch, not {opts[key]!r}") from e
    if ms < 0:
        raise ValueError(f"option {_NAMES[key]} must not be negative, not {ms}")
    return ms


def _times_json(opts: Mapping[str, str], key: str) -> Optional[Offsets]:
    """``{"topic": {"0": ms}}`` (``startingOffsetsByTimestamp``), or None when not given."""
    if key not in opts:
        return None
    try:
        given = json.loads(opts[key])
        times = {str(t): {str(int(p)): int(ms) for p, ms in ps.items()} for t, ps in given.items()}
    except (ValueError, AttributeError, TypeError) as e:
        raise ValueError(f"option {_NAMES[key]} must be JSON like {{\"topic\": {{\"0\": 1700000000000}}}} "
                         f"(ms since the epoch), not {opts[key]!r}") from e
    if any(ms < 0 for ps in times.values() for ms in ps.values()):
        raise ValueError(f"option {_NAMES[key]}: times must not be negative (ms since the epoch)")
    return times


def _positive(opts: Mapping[str, str], key: str) -> Optional[int]:
    if key not in opts:
        return None
    try:
        n = int(opts[key])
    except ValueError as e:
        raise ValueError(f"option {key} must be a positive integer, not {opts[key]!r}") from e
    if n <= 0:
        raise ValueError(f"option {key} must be positive, not {n}")
    return n


def _flag(value: str, name: str) -> bool:
    v = str(value).strip().lower()
    if v not in ("true", "false"):
        raise ValueError(f"option {name} must be true or false, not {value!r}")
    return v == "true"


_NAMES = {n.lower(): n for n in (
    "startingOffsetsByTimestamp", "endingOffsetsByTimestamp", "startingTimestamp", "endingTimestamp",
    "startingOffsetsByTimestampStrategy", "groupIdPrefix", "fetchOffset.numRetries", "fetchOffset.retryIntervalMs",
    "maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay",
)}


def _spark_name(lower: str, options: Mapping[str, Any]) -> str:
    """The option's name as Spark's documentation spells it (Spark hands options over lower-cased)."""
    return _NAMES.get(lower) or next((k for k in options if k.lower() == lower), lower)


def partitions_of(offsets: Offsets) -> List[Tuple[str, int]]:
    """The (topic, partition) pairs of an offsets dict."""
    return [(t, int(p)) for t, ps in offsets.items() for p in ps]
