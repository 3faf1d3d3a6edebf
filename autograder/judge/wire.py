"""The channel between grader and worker: length-prefixed .npz messages of plain arrays, and
the two messages it carries (Request to the worker, Reply from it), encoded and decoded here.

Copied next to the worker and imported there as a top-level module: numpy and the standard
library only. docs/judge.md describes the framing and what decode_untrusted refuses.
"""
from __future__ import annotations

import io
import os
import select
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"CS231NJ1"
HEADER = len(MAGIC) + 8
ALLOWED_KINDS = "biufU"
MAX_MEMBERS = 256
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Request:
    """The grader asks: run probes.PROBES[probe] on inputs (scalars as 0-d arrays)."""

    probe: str
    inputs: Arrays

    def encode(self) -> bytes:
        return _frame({"__probe__": np.asarray(self.probe), **self.inputs})

    @classmethod
    def decode(cls, body: bytes) -> Request:
        """The request in a message from the grader (the trusted side)."""
        arrays = decode_trusted(body)
        return cls(str(arrays.pop("__probe__")), arrays)


@dataclass(frozen=True)
class Reply:
    """The worker answers. status: "booted", "ready", "ok" or "error"; outputs: an ok's arrays;
    error, message, where: an error's exception type name, first line, and the judged package's
    function it came from. Decoded by the grader from untrusted bytes (from_untrusted)."""

    status: str
    outputs: Arrays = field(default_factory=dict)
    error: str = ""
    message: str = ""
    where: str = ""

    def encode(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"__status__": np.asarray(self.status)}
        arrays.update({f"out.{name}": value for name, value in self.outputs.items()})
        if self.status == "error":
            arrays.update({"__error__": np.asarray(self.error), "__message__": np.asarray(self.message),
                           "__where__": np.asarray(self.where)})
        return _frame(arrays)

    @classmethod
    def from_untrusted(cls, body: bytes, max_bytes: int) -> Reply:
        """The reply in a message written by the judged process; raises ChannelError. Its texts
        are cut to printable characters of a bounded length; its outputs are plain arrays."""
        arrays = decode_untrusted(body, max_bytes)
        return cls(_text(arrays, "__status__", 20),
                   {name[4:]: value for name, value in arrays.items() if name.startswith("out.")},
                   _text(arrays, "__error__", 60), _text(arrays, "__message__", 300),
                   _text(arrays, "__where__", 80))


def _text(arrays: Mapping[str, np.ndarray], key: str, limit: int) -> str:
    value = arrays.get(key)
    if value is None or value.dtype.kind != "U" or value.size != 1:
        return ""
    return "".join(ch for ch in str(value.item()) if ch.isprintable())[:limit]


class ChannelError(Exception):
    """The other side broke the protocol: bad framing, a bad archive, an array not allowed."""


class Timeout(Exception):
    """The deadline passed before a whole message went through."""


class Closed(Exception):
    """The other side closed the channel (for the grader: the worker died)."""


def _frame(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Bytes of one message: MAGIC, the body's length (8 bytes, big-endian), an uncompressed .npz
    (one stored NAME.npy per array, as np.savez writes it, but never a pickle)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    body = buffer.getvalue()
    return MAGIC + len(body).to_bytes(8, "big") + body


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise Timeout()
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise Closed()
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None = None, max_bytes: int | None = None) -> bytes:
    """The body (.npz bytes) of the next message on fd; raises Timeout, Closed or ChannelError.

    deadline: time.monotonic() value, or None to wait forever. max_bytes: largest body accepted.
    """
    header = _read_exact(fd, HEADER, deadline)
    if header[:len(MAGIC)] != MAGIC:
        raise ChannelError("the reply does not start like a message")
    size = int.from_bytes(header[len(MAGIC):], "big")
    if max_bytes is not None and size > max_bytes:
        raise ChannelError(f"the reply is {size} bytes, more than the {max_bytes} allowed")
    return _read_exact(fd, size, deadline)


def write_message(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write all of `data` (an encoded message) to fd before the deadline; raises Timeout or Closed."""
    view = memoryview(data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            _, ready, _ = select.select([], [fd], [], left)
            if not ready:
                raise Timeout()
        try:
            written = os.write(fd, view[:1 << 16])
        except (BrokenPipeError, ConnectionResetError):
            raise Closed() from None
        view = view[written:]


def decode_trusted(body: bytes) -> Arrays:
    """name -> array of a message from the grader (trusted side): np.load without pickles."""
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def decode_untrusted(body: bytes, max_bytes: int) -> Arrays:
    """name -> plain ndarray of a message written by untrusted code; raises ChannelError."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ChannelError(f"the reply is not an .npz archive ({exc})") from None
    if len(members) > MAX_MEMBERS:
        raise ChannelError(f"the reply holds {len(members)} arrays, more than {MAX_MEMBERS}")
    if sum(m.file_size for m in members) > max_bytes:
        raise ChannelError("the reply's arrays are larger than allowed")
    arrays: Arrays = {}
    for member in members:
        name = member.filename
        if member.compress_type != zipfile.ZIP_STORED or not name.endswith(".npy"):
            raise ChannelError(f"the reply's member {name[:40]!r} is not a stored .npy")
        try:
            data = archive.read(member)
        except Exception as exc:  # noqa: BLE001  (zipfile raises many kinds on bad input)
            raise ChannelError(f"the reply's member {name[:40]!r} cannot be read ({exc})") from None
        arrays[name[:-4]] = _npy_array(data, name)
    return arrays


def _npy_array(data: bytes, name: str) -> np.ndarray:
    """A fresh C-ordered ndarray from .npy bytes, after checking header against size."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = reader(stream, max_header_size=1000)
    except Exception as exc:  # noqa: BLE001  (any malformed header)
        raise ChannelError(f"the reply's array {name[:40]!r} has a bad header ({exc})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
            or dtype.kind not in ALLOWED_KINDS:
        raise ChannelError(f"the reply's array {name[:40]!r} has dtype {dtype}, not a plain "
                           "number, boolean or string dtype")
    if len(shape) > 32 or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ChannelError(f"the reply's array {name[:40]!r} has a bad shape")
    count = 1
    for d in shape:
        count *= d
    payload = data[stream.tell():]
    if count * dtype.itemsize != len(payload):
        raise ChannelError(f"the reply's array {name[:40]!r} has {len(payload)} bytes for shape "
                           f"{shape} of {dtype}")
    flat = np.frombuffer(payload, dtype=dtype, count=count)
    array = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    return np.array(array, order="C")
