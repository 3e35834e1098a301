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
