"""Type stubs for the private native module (built from src/py by maturin)."""

from os import PathLike
from typing import Any, Literal, Optional, Sequence, Union

from typing_extensions import Self, final

__version__: str

@final
class NativeReader:
    """A capture file as a stream of Arrow record batches (see pktstream.PacketReader)."""

    def __new__(
        cls,
        path: Union[str, PathLike[str]],
        *,
        columns: Optional[Sequence[str]] = None,
        batch_size: int = 65536,
        addresses: Literal["string", "binary"] = "string",
        strict: bool = False,
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
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...

def packet_schema(
    columns: Optional[Sequence[str]] = None, addresses: Literal["string", "binary"] = "string"
) -> Any: ...

# Distance kernels (src/py/distance.rs); the public API is pktstream.distance.
def pdist(x: Any, metric: str = "euclidean") -> Any: ...
def cdist(xa: Any, xb: Any, metric: str = "euclidean") -> Any: ...
def pairs(
    table: Any,
    features: Any,
    *,
    time: Optional[Any] = None,
    window: Optional[int] = None,
    metric: str = "euclidean",
    top_k: Optional[int] = None,
    max_distance: Optional[float] = None,
    sort: bool = True,
    batch_size: int = 1048576,
) -> Any: ...
@final
class NativeWindowedPairs:
    """Windowed pairs state machine (see pktstream.distance.WindowedPairs)."""

    def __new__(
        cls,
        window: int,
        n_features: int,
        *,
        allowed_lateness: int = 0,
        metric: str = "euclidean",
        top_k: Optional[int] = None,
        max_distance: Optional[float] = None,
        batch_size: int = 1048576,
    ) -> Self: ...
    def push(self, table: Any, time: Any, features: Any) -> Any: ...
    def flush(self) -> Any: ...
    @property
    def late_events(self) -> int: ...
    @property
    def open_windows(self) -> int: ...
    @property
    def watermark(self) -> Optional[int]: ...
