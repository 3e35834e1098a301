"""Type stubs for the private native module (built from src/py by maturin)."""

from os import PathLike
from typing import Any, Callable, Dict, Literal, Optional, Sequence, Union

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Self, final

from pktstream._types import (
    AddressFormat,
    ArrowArrayExportable,
    ArrowSchemaExportable,
    ArrowStreamExportable,
    ConsumeFormat,
    DecodeFormat,
    Metric,
    ProduceFormat,
    TimestampUnit,
)

#: What the distance kernels take: a 2-D float64 or float32 numpy array (any memory order).
_Matrix = NDArray[Union[np.float64, np.float32]]

__all__ = [
    "NativeReader",
    "packet_schema",
    "build_info",
    "NativeConsumer",
    "produce_pcap",
    "produce",
    "decode_values",
    "create_topic",
    "delete_topic",
    "list_topics",
    "describe_topic",
    "list_groups",
    "group_offsets",
    "pdist",
    "cdist",
    "pairs",
    "NativeWindowedPairs",
    "netflow_pipeline",
    "NativeFlowReader",
    "NativeFlowMeter",
    "NativePcapWriter",
    "flow_schema",
    "capture",
    "produce_live",
    "capture_to_pcap",
    "archive_run",
    "archive_query",
    "archive_is_stale_part",
    "__version__",
]

__version__: str

def build_info() -> Dict[str, Any]: ...

@final
class NativeReader:
    """A capture file, or a live capture (made by ``capture``), as a stream of Arrow record
    batches (see pktstream.PacketReader and pktstream.LiveReader)."""

    def __new__(
        cls,
        path: Union[str, PathLike[str]],
        *,
        columns: Optional[Sequence[str]] = None,
        batch_size: int = 65536,
        addresses: Literal["string", "binary"] = "string",
        strict: bool = False,
        bpf: Optional[str] = None,
    ) -> Self: ...
    def next_batch(self) -> Optional[Any]: ...
    def read_all(self) -> Any: ...
    def stop(self) -> None: ...
    @property
    def schema(self) -> Any: ...
    @property
    def path(self) -> Union[str, PathLike[str]]: ...
    @property
    def file_size(self) -> Optional[int]: ...
    def stats(self) -> dict[str, Any]: ...
    def warnings(self) -> list[str]: ...
    def close(self) -> None: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...

def packet_schema(
    columns: Optional[Sequence[str]] = None, addresses: Literal["string", "binary"] = "string"
) -> Any: ...

@final
class NativeFlowMeter:
    """A flow meter fed with batches of frames (see pktstream.FlowMeter)."""

    def __new__(cls, meter: Dict[str, Any], *, timestamp_unit: Literal["s", "ms", "us", "ns"] = "us") -> Self: ...
    def update(self, batch: ArrowArrayExportable) -> list[Any]: ...
    def finish(self) -> list[Any]: ...
    @property
    def schema(self) -> Any: ...
    def stats(self) -> dict[str, Any]: ...

@final
class NativePcapWriter:
    """A classic pcap file being written (see pktstream.PcapWriter)."""

    def __new__(
        cls,
        target: Any,
        *,
        link_type: int = 1,
        snaplen: int = 262144,
        nanosecond: bool = False,
        big_endian: bool = False,
    ) -> Self: ...
    def write(self, ts_ns: int, frame: bytes, wirelen: Optional[int] = None) -> None: ...
    def write_batch(self, batch: Any) -> tuple[int, int]: ...
    @property
    def packets(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

@final
class NativeFlowReader:
    """A capture file, or a packet reader's source, as a stream of flow record batches (see
    pktstream.FlowReader). ``meter`` holds the meter's options (pktstream._flows._meter_args)."""

    def __new__(
        cls,
        source: Union[str, PathLike[str], NativeReader],
        meter: Dict[str, Any],
        *,
        strict: bool = False,
        bpf: Optional[str] = None,
    ) -> Self: ...
    def next_batch(self) -> Optional[Any]: ...
    def read_all(self) -> Any: ...
    @property
    def schema(self) -> Any: ...
    @property
    def path(self) -> str: ...
    @property
    def file_size(self) -> Optional[int]: ...
    def stats(self) -> dict[str, Any]: ...
    def warnings(self) -> list[str]: ...
    def close(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def live(self) -> bool: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...

def flow_schema(
    statistics: bool = False, columns: Optional[Sequence[str]] = None, server_name: bool = False
) -> Any: ...


def produce_pcap(
    path: Union[str, PathLike[str]],
    topic: str,
    *,
    bootstrap_servers: str,
    format: ProduceFormat = "json",
    key: Optional[str] = ...,
    columns: Optional[Sequence[str]] = None,
    config: Optional[dict[str, Any]] = None,
    timestamp_unit: TimestampUnit = "us",
    rows_per_message: int = 10000,
    csv_delimiter: str = ",",
    batch_size: int = 65536,
    addresses: AddressFormat = "string",
    connect_timeout: float = 10.0,
    progress: Optional[Callable[[int, int, int, int, int], Any]] = None,
    bpf: Optional[str] = None,
) -> dict[str, Any]: ...
def produce(
    data: ArrowStreamExportable,
    topic: str,
    *,
    bootstrap_servers: str,
    format: ProduceFormat = "json",
    key: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    config: Optional[dict[str, Any]] = None,
    timestamp_unit: TimestampUnit = "us",
    rows_per_message: int = 10000,
    csv_delimiter: str = ",",
    connect_timeout: float = 10.0,
    progress: Optional[Callable[[int, int, int, int, int], Any]] = None,
) -> dict[str, Any]: ...
def create_topic(
    topic: str,
    *,
    partitions: int = 1,
    bootstrap_servers: str,
    replication_factor: int = 1,
    config: Optional[dict[str, Any]] = None,
    topic_config: Optional[dict[str, Any]] = None,
    timeout: float = 10.0,
) -> bool: ...
def delete_topic(
    topic: str, *, bootstrap_servers: str, config: Optional[dict[str, Any]] = None, timeout: float = 10.0
) -> bool: ...
def list_topics(
    *,
    bootstrap_servers: str,
    config: Optional[dict[str, Any]] = None,
    topic: Optional[str] = None,
    timeout: float = 10.0,
) -> list[tuple[str, int]]: ...
def describe_topic(
    topic: str, *, bootstrap_servers: str, config: Optional[dict[str, Any]] = None, timeout: float = 10.0
) -> tuple[
    list[tuple[int, int, list[int], list[int], int, int]],
    list[tuple[str, Optional[str], str, bool]],
]: ...
def list_groups(
    *, bootstrap_servers: str, config: Optional[dict[str, Any]] = None, timeout: float = 10.0
) -> list[tuple[str, str, str, int]]: ...
def group_offsets(
    group: str,
    *,
    bootstrap_servers: str,
    topics: Optional[Sequence[str]] = None,
    config: Optional[dict[str, Any]] = None,
    timeout: float = 10.0,
) -> list[tuple[str, int, Optional[int], int, int]]: ...
def decode_values(
    values: ArrowArrayExportable,
    *,
    format: DecodeFormat = "json",
    schema: Optional[ArrowSchemaExportable] = None,
    columns: Optional[Sequence[str]] = None,
    addresses: AddressFormat = "string",
    timestamp_unit: TimestampUnit = "us",
    keys: Optional[ArrowArrayExportable] = None,
    timestamps_ms: Optional[ArrowArrayExportable] = None,
) -> Any: ...
@final
class NativeConsumer:
    """A Kafka consumer returning Arrow record batches (see pktstream.Consumer)."""

    def __new__(
        cls,
        *,
        bootstrap_servers: str,
        group_id: Optional[str] = None,
        format: ConsumeFormat = "json",
        schema: Optional[ArrowSchemaExportable] = None,
        columns: Optional[Sequence[str]] = None,
        addresses: AddressFormat = "string",
        timestamp_unit: TimestampUnit = "us",
        config: Optional[dict[str, Any]] = None,
        headers: bool = False,
    ) -> Self: ...
    def subscribe(self, topics: Sequence[str], timeout: float = 10.0) -> None: ...
    def assign(self, partitions: Sequence[tuple[str, int, int]], timeout: float = 10.0) -> None: ...
    def assign_all(self, topics: Sequence[str], timeout: float = 10.0) -> list[tuple[str, int, int]]: ...
    def read_batch(self, max_rows: int = 65536, timeout: float = 1.0) -> Any: ...
    def commit(self) -> None: ...
    def commit_offsets(self, offsets: Sequence[tuple[str, int, int]]) -> None: ...
    def seek(self, topic: str, partition: int, offset: int, timeout: float = 10.0) -> None: ...
    def assignment(self) -> list[tuple[str, int]]: ...
    def positions(self) -> list[tuple[str, int, int]]: ...
    def set_rebalance_callbacks(
        self,
        on_revoke: Optional[Callable[[list[tuple[str, int]]], tuple[bool, list[tuple[str, int, int]]]]] = None,
        on_assign: Optional[Callable[[list[tuple[str, int]]], object]] = None,
    ) -> None: ...
    def position(self, topic: str, partition: int) -> Optional[int]: ...
    def watermarks(self, topic: str, partition: int, timeout: float = 10.0) -> tuple[int, int]: ...
    def offsets_for_times(
        self, timestamps: Sequence[tuple[str, int, int]], timeout: float = 10.0
    ) -> list[tuple[str, int, Optional[int]]]: ...
    def revocations(self) -> tuple[int, int]: ...
    def committed_by_me(self) -> list[tuple[str, int, int]]: ...
    def config(self) -> list[tuple[str, str]]: ...
    def close(self) -> None: ...
# Distance kernels (src/py/distance.rs); the public API is pktstream.distance.
def pdist(x: _Matrix, metric: Metric = "euclidean") -> NDArray[np.float64]: ...
def cdist(xa: _Matrix, xb: _Matrix, metric: Metric = "euclidean") -> NDArray[np.float64]: ...
def pairs(
    table: ArrowStreamExportable,
    features: _Matrix,
    *,
    time: Optional[NDArray[np.int64]] = None,
    window: Optional[int] = None,
    metric: Metric = "euclidean",
    top_k: Optional[int] = None,
    max_distance: Optional[float] = None,
    sort: bool = True,
    batch_size: int = 1048576,
    max_group_events: Optional[int] = None,
    on_large_group: Literal["top_k", "skip"] = "top_k",
) -> tuple[Any, list[tuple[str, Optional[int], int]]]: ...
@final
class NativeWindowedPairs:
    """Windowed pairs state machine (see pktstream.distance.WindowedPairs)."""

    def __new__(
        cls,
        window: int,
        n_features: int,
        *,
        allowed_lateness: int = 0,
        metric: Metric = "euclidean",
        top_k: Optional[int] = None,
        max_distance: Optional[float] = None,
        batch_size: int = 1048576,
        max_group_events: Optional[int] = None,
        on_large_group: Literal["top_k", "skip"] = "top_k",
    ) -> Self: ...
    def push(self, table: ArrowStreamExportable, time: NDArray[np.int64], features: _Matrix) -> Any: ...
    def flush(self) -> Any: ...
    def take_large_groups(self) -> list[tuple[str, Optional[int], int]]: ...
    @property
    def late_events(self) -> int: ...
    @property
    def large_groups(self) -> int: ...
    @property
    def large_group_events(self) -> int: ...
    @property
    def open_windows(self) -> int: ...
    @property
    def watermark(self) -> Optional[int]: ...

# The windowed pipeline (src/py/pipeline.rs); the public API is pktstream.pipelines.netflow_distances.
def netflow_pipeline(
    in_topics: Sequence[str],
    out_topic: str,
    *,
    bootstrap_servers: str,
    group_id: str,
    key: str,
    id: str,
    time: str,
    features: Sequence[str],
    window: int,
    allowed_lateness: int,
    metric: Metric,
    normalize: Union[None, str, Sequence[Optional[tuple[float, float]]]],
    top_k: Optional[int],
    max_distance: Optional[float],
    max_group_events: Optional[int],
    on_large_group: Literal["top_k", "skip"],
    max_events: Optional[int],
    idle_timeout: Optional[float],
    idle_partition_timeout: float,
    batch_size: int,
    schema: Any,
    config: Optional[Dict[str, Any]],
    assignment_wait: float,
    progress: Optional[Callable[[Dict[str, Any], list[tuple[str, Optional[int], int]]], Any]],
) -> Dict[str, Any]: ...

def capture(
    interface: str,
    *,
    bpf: Optional[str] = None,
    snaplen: int = 65535,
    promisc: bool = False,
    buffer_size: Optional[int] = None,
    timeout: float = 0.1,
    immediate: bool = False,
    max_packets: Optional[int] = None,
    duration: Optional[float] = None,
    batch_size: int = 65536,
    columns: Optional[Sequence[str]] = None,
    addresses: Literal["string", "binary"] = "string",
) -> NativeReader:
    """A live capture as a NativeReader (see pktstream.capture)."""

def produce_live(
    interface: str,
    topic: str,
    *,
    bootstrap_servers: str,
    format: ProduceFormat = "raw",
    key: Optional[str] = ...,
    columns: Optional[Sequence[str]] = None,
    config: Optional[dict[str, Any]] = None,
    bpf: Optional[str] = None,
    snaplen: int = 65535,
    promisc: bool = False,
    buffer_size: Optional[int] = None,
    timeout: float = 0.1,
    immediate: bool = False,
    max_packets: Optional[int] = None,
    duration: Optional[float] = None,
    timestamp_unit: TimestampUnit = "us",
    rows_per_message: int = 10000,
    csv_delimiter: str = ",",
    batch_size: int = 65536,
    addresses: AddressFormat = "string",
    connect_timeout: float = 10.0,
    progress: Optional[Callable[[int, int, int, int, int], Any]] = None,
) -> dict[str, Any]: ...
def capture_to_pcap(
    interface: str,
    path: Union[str, PathLike[str]],
    *,
    bpf: Optional[str] = None,
    snaplen: int = 65535,
    promisc: bool = False,
    buffer_size: Optional[int] = None,
    timeout: float = 0.1,
    immediate: bool = False,
    max_packets: Optional[int] = None,
    duration: Optional[float] = None,
) -> dict[str, Any]: ...

# The archive (src/py/archive.rs); pktstream.archive wraps these.
def archive_run(
    topic: str,
    output: Union[str, PathLike[str], None] = None,
    *,
    target: Optional[Any] = None,
    bootstrap_servers: str,
    group_id: str,
    roll_packets: int,
    roll_seconds: float,
    timestamp_unit: TimestampUnit = "us",
    idle_timeout: Optional[float] = None,
    max_packets: Optional[int] = None,
    config: Optional[dict[str, Any]] = None,
    progress: Optional[Callable[[dict[str, Any]], Any]] = None,
) -> dict[str, Any]: ...
def archive_query(
    files: Sequence[tuple[str, int]],
    output: Union[str, PathLike[str]],
    *,
    start: Optional[int] = None,
    end: Optional[int] = None,
    src_ip: Optional[str] = None,
    dst_ip: Optional[str] = None,
    port: Optional[int] = None,
    proto: Optional[int] = None,
    bpf: Optional[str] = None,
    opener: Optional[Callable[[str], Any]] = None,
) -> dict[str, int]: ...
def archive_is_stale_part(name: str, prefix: str) -> bool: ...
