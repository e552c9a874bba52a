"""What a model file really is, checked before the registry stores it.

``inspect_model(declared, data)`` reads a model file (bytes or a binary stream) and either returns
a ``ModelInspection`` describing it or raises: ``TooLarge`` past ``Limits.max_bytes``, and
``ValidationError`` for everything else, with ``details["declared"]`` (the format claimed) and
``details["found"]`` (what the bytes are: ``"pickle"``, ``"zip"``, ``"gzip"``, ``"npy"``, ...).

Refused whatever the declared format, because loading them runs arbitrary code (``found`` is
``"pickle"`` and the message names pickle):

- pickles of every protocol (``pickle``, ``cloudpickle``, ``dill``, uncompressed ``joblib``);
- joblib's compressed containers (zlib, gzip, bz2, xz, lzma, its legacy ``ZF`` header) whose
  payload is a pickle, and LZ4 frames, which the standard library cannot open;
- NumPy ``.npy`` arrays whose dtype holds Python objects (they are stored as pickles);
- ZIP archives holding a pickle member: PyTorch checkpoints (``data.pkl``), ``.pkl``/``.joblib``.

``skops``: a ZIP archive that is safe to open (no encrypted, symlink or directory members, no
absolute, traversing or backslashed names, no duplicates, no overlapping entries, member count,
total size and compression ratio bounded, every CRC verified) whose ``schema.json`` is the skops
schema (``protocol``, ``__class__``, ``__module__``, ``__loader__``), whose other members are the
``.npy`` arrays (plain dtypes only, sizes matching their headers), ``.npz`` sparse matrices and
``.bin`` byte strings that skops writes, each one referenced file present. The inspection reports
the top-level estimator and every non-builtin class the schema names.

``onnx``: a protobuf ``ModelProto`` walked on the wire, without the onnx library: every field of
the model has a known number and the wire type the schema gives it, singular fields appear once,
no length runs past its parent or the file (so truncation and trailing bytes are refused), and
``ir_version``, ``graph`` and (from IR version 3) ``opset_import`` are present. The inspection
reports the IR version, producer, opsets, the graph's input and output names and the locations of
external tensor data (which must be relative paths inside the package). The model's and the
graph's sub-messages are walked one level deep, so their bounds hold; deeper (node attributes,
tensor contents) is the runtime's work.

Every read is bounded: by ``Limits`` for sizes and counts, and no decompression produces more
than the declared size of a member or a fixed sniffing window.
"""

from __future__ import annotations

import ast
import bz2
import io
import json
import lzma
import pickletools
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from charter.domain.registry import MAX_PATH, ModelFormat, check_artifact_path
from charter.errors import TooLarge, ValidationError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

SNIFF_BYTES = 1 * MiB
"""How much of a file or member is read to recognise it."""
SNIFF_OUTPUT = 64 * KiB
"""How much of a compressed payload is decompressed to see whether it is a pickle."""
RATIO_FLOOR = 1 * MiB
"""Members smaller than this are not held to the compression-ratio limit."""
CHUNK = 1 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the work one inspection may do."""

    max_bytes: int = 2 * GiB
    """The largest model file accepted (``TooLarge`` beyond it)."""
    max_members: int = 10_000
    """The most members a skops archive (or a sparse matrix inside it) may hold."""
    max_uncompressed_bytes: int = 4 * GiB
    """The most bytes all members of an archive may decompress to, nested archives included."""
    max_ratio: int = 200
    """The highest compression ratio of a member of at least ``RATIO_FLOOR`` bytes."""
    max_schema_bytes: int = 64 * MiB
    """The largest ``schema.json`` a skops file may carry (it is parsed in memory)."""
    max_npz_bytes: int = 256 * MiB
    """The largest sparse matrix (``.npz``, itself a ZIP) a skops file may carry (read in memory)."""


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ModelInspection:
    """What a model file turned out to be. Fields that do not apply to its format stay empty."""

    format: ModelFormat
    size: int
    estimator: str | None = None
    """skops: the top-level object's ``module.Class``."""
    classes: tuple[str, ...] = ()
    """skops: every non-builtin ``module.Class`` named in the schema, sorted."""
    skops_protocol: int | None = None
    skops_version: str | None = None
    ir_version: int | None = None
    producer_name: str | None = None
    producer_version: str | None = None
    opsets: tuple[tuple[str, int], ...] = ()
    """onnx: ``(domain, version)`` pairs; the default domain is spelled ``ai.onnx``."""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    external_data: tuple[str, ...] = ()
    """onnx: the files, relative to the model, that hold initializers stored outside it."""


def inspect_model(declared: ModelFormat | str, data: bytes | BinaryIO,
                  limits: Limits = DEFAULT_LIMITS) -> ModelInspection:
    """Check that ``data`` is a model of the ``declared`` format that is safe to store.

    ``data`` may be bytes or a binary stream; a stream is read whole from its start (a seekable
    one is never loaded into memory) and its position is left undefined.
    """
    blob = _Blob.of(data, limits.max_bytes)
    name = str(declared)[:64]
    prefix = blob.read_at(0, SNIFF_BYTES)
    if not prefix:
        raise _refused(name, "empty", f"the {name} model file is empty")
    found = _identify(prefix)
    _refuse_pickles(name, found, prefix, blob)
    try:
        model_format = ModelFormat(name)
    except ValueError:
        raise _refused(name, found, f"model format {name!r} is not accepted (accepted: "
                       f"{', '.join(f.value for f in ModelFormat)}); the file is "
                       f"{_describe(found, prefix)}") from None
    if model_format is ModelFormat.SKOPS:
        return _inspect_skops(found, _describe(found, prefix), blob, limits)
    return _inspect_onnx(found, _describe(found, prefix), blob)


# --- The bytes ------------------------------------------------------------------------------------

class _Blob:
    """Random access to the model's bytes, whether they came as bytes or as a stream."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream = stream
        self.size = size

    @classmethod
    def of(cls, data: bytes | BinaryIO, max_bytes: int) -> _Blob:
        if isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
            _check_size(len(raw), max_bytes)
            return cls(io.BytesIO(raw), len(raw))
        if data.seekable():
            size = data.seek(0, io.SEEK_END)
            _check_size(size, max_bytes)
            return cls(data, size)
        raw = data.read(max_bytes + 1)
        _check_size(len(raw), max_bytes)
        return cls(io.BytesIO(raw), len(raw))

    def read_at(self, offset: int, length: int) -> bytes:
        self.stream.seek(offset)
        return self.stream.read(max(0, min(length, self.size - offset)))


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise TooLarge(f"the model file exceeds the limit of {max_bytes} bytes", max_bytes=max_bytes)


def _refused(declared: str, found: str, message: str, **details: Any) -> ValidationError:
    return ValidationError(message, field="format", declared=declared, found=found, **details)


# --- Recognising what the bytes are ---------------------------------------------------------------

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"
LZ4_MAGIC = b"\x04\x22\x4d\x18"
JOBLIB_ZF_HEADER = re.compile(rb"ZF0x[0-9a-fA-F]{1,17}L? *")
"""joblib before 0.9.3 wrote ``ZF`` and the payload's length in hex, padded, before zlib data."""

_DESCRIPTIONS = {
    "empty": "empty",
    "zip": "a ZIP archive",
    "npy": "a NumPy array (.npy)",
    "gzip": "gzip-compressed data",
    "bz2": "bzip2-compressed data",
    "xz": "xz-compressed data",
    "lzma": "lzma-compressed data",
    "zlib": "zlib-compressed data",
    "joblib-zf": "a joblib zlib container",
    "lz4": "an LZ4 frame",
    "pickle": "a pickle",
    "json": "JSON",
    "text": "text",
    "unknown": "unrecognised binary data",
}


def _identify(prefix: bytes) -> str:
    """A coarse name for what ``prefix`` starts; ``unknown`` covers protobuf, which has no magic."""
    if prefix.startswith(ZIP_MAGIC):
        return "zip"
    if prefix.startswith(NPY_MAGIC):
        return "npy"
    if prefix.startswith(b"\x1f\x8b"):
        return "gzip"
    if prefix.startswith(b"BZh"):
        return "bz2"
    if prefix.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if prefix.startswith(b"\x5d\x00\x00"):
        return "lzma"
    if prefix.startswith(LZ4_MAGIC):
        return "lz4"
    if prefix.startswith(b"ZF0x"):
        return "joblib-zf"
    if len(prefix) >= 2 and prefix[0] == 0x78 and (prefix[0] << 8 | prefix[1]) % 31 == 0:
        return "zlib"
    if _pickle_evidence(prefix):
        return "pickle"
    head = prefix[:4096].lstrip()
    if head[:1] in (b"{", b"["):
        return "json"
    for cut in range(4 if len(prefix) > 4096 else 1):  # a character may straddle the cut
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(c.isprintable() or c in "\r\n\t" for c in text):
            return "text"
        break
    return "unknown"


def _describe(found: str, prefix: bytes) -> str:
    if found in ("unknown", "text"):
        return f"{_DESCRIPTIONS[found]} starting {prefix[:8].hex(' ')}"
    return _DESCRIPTIONS[found]


_CLASSIC_STARTS = frozenset(b"()]}cNILFSVJKMUTXG")
"""Opcodes that open protocol 0 and 1 pickles (which have no header)."""


def _pickle_evidence(prefix: bytes) -> str | None:
    """Why ``prefix`` is the start of a pickle, or None when it does not look like one."""
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return f"pickle protocol {prefix[1]}"
    if not prefix or prefix[0] not in _CLASSIC_STARTS:
        return None
    count = 0
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(prefix)):
            count += 1
            if opcode.name == "STOP":
                return "pickle protocol 0 or 1" if count >= 2 else None
            if count >= 256:
                break
    except Exception:  # any decoding failure ends the evidence; what was decoded decides
        return "pickle protocol 0 or 1" if count >= 32 else None
    return "pickle protocol 0 or 1" if count >= 32 else None


def _decompressed_prefix(kind: str, data: bytes) -> bytes:
    """The first ``SNIFF_OUTPUT`` bytes of a compressed payload, or what could be had of them."""
    decompress: Callable[[bytes, int], bytes]
    if kind == "gzip":
        decompress = zlib.decompressobj(wbits=31).decompress
    elif kind == "zlib":
        decompress = zlib.decompressobj().decompress
    elif kind == "joblib-zf":
        header = JOBLIB_ZF_HEADER.match(data)
        data = data[header.end():] if header else b""
        decompress = zlib.decompressobj().decompress
    elif kind == "bz2":
        decompress = bz2.BZ2Decompressor().decompress
    elif kind == "xz":
        decompress = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress
    elif kind == "lzma":
        decompress = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress
    else:
        return b""
    try:
        return decompress(data, SNIFF_OUTPUT)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return b""


COMPRESSED = frozenset({"gzip", "zlib", "joblib-zf", "bz2", "xz", "lzma"})
PICKLE_MEMBER = re.compile(r"\.(pkl|pickle|joblib|pt|pth|ckpt)$", re.IGNORECASE)
"""Names of members that hold pickles: PyTorch's ``data.pkl``, TorchScript's ``constants.pkl``..."""

PICKLE_ADVICE = ("pickle-based formats run arbitrary code when loaded; save scikit-learn models "
                 "with skops (skops.io.dump) or export the model to ONNX")


def _pickle_refusal(declared: str, what: str, **details: Any) -> ValidationError:
    return _refused(declared, "pickle", f"refused: the {declared} model file is {what}; "
                    f"{PICKLE_ADVICE}", **details)


def _refuse_pickles(declared: str, found: str, prefix: bytes, blob: _Blob) -> None:
    """Raise when the file is, or carries at its top level, a pickle, whatever was declared."""
    if found == "pickle":
        raise _pickle_refusal(declared, f"a pickle ({_pickle_evidence(prefix)})")
    if found == "lz4":
        raise _pickle_refusal(declared, "an LZ4 frame, the container joblib writes compressed "
                              "pickles in", container="lz4")
    if found in COMPRESSED:
        evidence = _pickle_evidence(_decompressed_prefix(found, prefix))
        if evidence:
            raise _pickle_refusal(declared, f"a pickle ({evidence}) inside "
                                  f"{_DESCRIPTIONS[found]}, as joblib writes", container=found)
    if found == "npy":
        header = _npy_header(prefix, declared, "the file")
        if _descr_needs_pickle(header["descr"]):
            raise _pickle_refusal(declared, "a NumPy array of Python objects, stored as a pickle")
    if found == "zip":
        with _open_zip(declared, blob) as archive:
            for info in archive.infolist():
                if PICKLE_MEMBER.search(info.filename):
                    what = ("a PyTorch checkpoint (a ZIP archive holding data.pkl, a pickle)"
                            if info.filename.endswith("data.pkl") else
                            f"a ZIP archive holding the pickle {info.filename!r}")
                    raise _pickle_refusal(declared, what, member=info.filename[:MAX_PATH])


# --- ZIP archives and skops -----------------------------------------------------------------------

ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
              NotImplementedError, RuntimeError, struct.error, zlib.error, lzma.LZMAError,
              OverflowError)
"""What zipfile raises, one way or another, on a corrupt or hostile archive."""


def _open_zip(declared: str, blob: _Blob) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(blob.stream)
    except ZIP_ERRORS as e:
        raise _refused(declared, "zip", f"the {declared} model file is a corrupt ZIP archive: {e}"
                       ) from None


SKOPS = ModelFormat.SKOPS.value
COMPRESSIONS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                          zipfile.ZIP_LZMA})
MAX_NAME = MAX_PATH
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
SKOPS_MEMBER = re.compile(r"[^/]+\.(npy|npz|bin)")
NPZ_MEMBER = re.compile(r"[^/]+\.npy")


class _Budget:
    """What remains of the bytes all members of one inspection may decompress to."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0

    def claim(self, size: int, where: str) -> None:
        self.used += size
        if self.used > self.total:
            raise _refused(SKOPS, "zip", f"the {SKOPS} archive decompresses to more than "
                           f"{self.total} bytes (a zip bomb?); refused at {where}",
                           max_uncompressed_bytes=self.total)


def _unsafe_path(name: str) -> str | None:
    """Why ``name`` could lead out of the directory it is read in, or None when it cannot.

    The rule is the registry's own for artifact paths (relative, normal, forward-slashed), less
    control characters.
    """
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        return f"path {name[:MAX_NAME]!r} holds control characters"
    try:
        check_artifact_path(name)
    except ValidationError as e:
        return e.message
    return None


def _check_archive(archive: zipfile.ZipFile, size: int, where: str, limits: Limits,
                   budget: _Budget) -> list[zipfile.ZipInfo]:
    """The members of ``archive``, once every one of them is known to be safe to read."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise _refused(SKOPS, "zip", f"{where} holds {len(infos)} members, more than the "
                       f"{limits.max_members} allowed", max_members=limits.max_members)
    names = set()
    for info in infos:
        name = info.filename
        if why := _unsafe_path(name):
            raise _refused(SKOPS, "zip", f"{where}: unsafe member: {why}", member=name[:MAX_NAME])
        if name in names:
            raise _refused(SKOPS, "zip", f"{where} holds {name!r} twice", member=name)
        names.add(name)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise _refused(SKOPS, "zip", f"{where}: member {name!r} is a symbolic link",
                           member=name)
        if ((info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG))
                or info.external_attr & 0x10 or name.endswith("/")):
            raise _refused(SKOPS, "zip", f"{where}: member {name!r} is not a regular file",
                           member=name)
        if info.flag_bits & 0x41:
            raise _refused(SKOPS, "zip", f"{where}: member {name!r} is encrypted", member=name)
        if info.compress_type not in COMPRESSIONS:
            raise _refused(SKOPS, "zip", f"{where}: member {name!r} uses the unsupported "
                           f"compression method {info.compress_type}", member=name)
        if (info.file_size >= RATIO_FLOOR
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
            raise _refused(SKOPS, "zip", f"{where}: member {name!r} compresses {info.file_size} "
                           f"bytes into {info.compress_size}, beyond the ratio of "
                           f"{limits.max_ratio} allowed (a zip bomb?)", member=name,
                           max_ratio=limits.max_ratio)
        budget.claim(info.file_size, f"{where}, member {name!r}")
    _check_layout(archive, infos, size, where)
    return infos


def _check_layout(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], size: int,
                  where: str) -> None:
    """No two members share bytes: overlapping entries are how the smallest zip bombs are made."""
    stream = archive.fp
    if stream is None:
        raise _refused(SKOPS, "zip", f"{where} is closed")
    end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise _refused(SKOPS, "zip", f"{where}: member {info.filename!r} overlaps another "
                           "(a zip bomb?)", member=info.filename)
        stream.seek(info.header_offset)
        header = stream.read(LOCAL_HEADER.size)
        if len(header) < LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise _refused(SKOPS, "zip", f"{where}: member {info.filename!r} has no local header",
                           member=info.filename)
        *_, name_length, extra_length = LOCAL_HEADER.unpack(header)
        end = info.header_offset + LOCAL_HEADER.size + name_length + extra_length + info.compress_size
    if end > min(archive.start_dir, size):
        raise _refused(SKOPS, "zip", f"{where}: the last member runs into the central directory")


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> Iterator[bytes]:
    """The member's bytes; zipfile stops at the declared size and checks the CRC at the end."""
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                yield chunk
    except ZIP_ERRORS as e:
        raise _refused(SKOPS, "zip", f"{where}: member {info.filename!r} cannot be read: {e}",
                       member=info.filename) from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                 keep: int) -> tuple[bytes, int]:
    """The first ``keep`` bytes of a member and its length, every byte read and verified."""
    kept = bytearray()
    length = 0
    for chunk in _chunks(archive, info, where):
        if len(kept) < keep:
            kept += chunk[:keep - len(kept)]
        length += len(chunk)
    if length != info.file_size:
        raise _refused(SKOPS, "zip", f"{where}: member {info.filename!r} is {length} bytes, "
                       f"not the {info.file_size} its entry declares", member=info.filename)
    return bytes(kept), length


def _inspect_skops(found: str, what: str, blob: _Blob, limits: Limits) -> ModelInspection:
    if found != "zip":
        raise _refused(SKOPS, found, f"a {SKOPS} model file is a ZIP archive; this one is {what}")
    budget = _Budget(limits.max_uncompressed_bytes)
    with _open_zip(SKOPS, blob) as archive:
        infos = _check_archive(archive, blob.size, f"the {SKOPS} archive", limits, budget)
        by_name = {info.filename: info for info in infos}
        if "schema.json" not in by_name:
            raise _refused(SKOPS, "zip", f"the ZIP archive has no schema.json: it is not a {SKOPS} "
                           "model file")
        for name in by_name:
            if name != "schema.json" and not SKOPS_MEMBER.fullmatch(name):
                raise _refused(SKOPS, "zip", f"unexpected member {name!r} in the {SKOPS} archive: "
                               "skops writes only schema.json and .npy, .npz and .bin files",
                               member=name)
        schema_info = by_name["schema.json"]
        if schema_info.file_size > limits.max_schema_bytes:
            raise _refused(SKOPS, "zip", f"schema.json exceeds {limits.max_schema_bytes} bytes",
                           max_schema_bytes=limits.max_schema_bytes)
        raw, _ = _read_member(archive, schema_info, f"the {SKOPS} archive", schema_info.file_size)
        summary = _read_schema(raw, set(by_name))
        for info in infos:
            if info.filename != "schema.json":
                _check_skops_member(archive, info, limits, budget)
    return ModelInspection(ModelFormat.SKOPS, blob.size, estimator=summary.estimator,
                           classes=summary.classes, skops_protocol=summary.protocol,
                           skops_version=summary.version)


def _check_skops_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits,
                        budget: _Budget) -> None:
    name = info.filename
    where = f"the {SKOPS} archive"
    if name.endswith(".npz"):
        if info.file_size > limits.max_npz_bytes:
            raise _refused(SKOPS, "zip", f"the sparse matrix {name!r} exceeds "
                           f"{limits.max_npz_bytes} bytes", member=name,
                           max_npz_bytes=limits.max_npz_bytes)
        content, _ = _read_member(archive, info, where, info.file_size)
        _check_npz(name, content, limits, budget)
        return
    prefix, length = _read_member(archive, info, where, SNIFF_BYTES)
    _refuse_pickled_member(name, prefix)
    if name.endswith(".npy"):
        _check_npy(name, prefix, length)


def _refuse_pickled_member(name: str, prefix: bytes) -> None:
    kind = _identify(prefix)
    evidence: str | None = None
    if kind == "pickle":
        evidence = _pickle_evidence(prefix)
    elif kind == "lz4":
        evidence = "an LZ4 frame, as joblib writes compressed pickles in"
    elif kind in COMPRESSED:
        evidence = _pickle_evidence(_decompressed_prefix(kind, prefix))
    if evidence:
        raise _pickle_refusal(SKOPS, f"an archive whose member {name!r} is a pickle ({evidence})",
                              member=name)


def _check_npz(name: str, content: bytes, limits: Limits, budget: _Budget) -> None:
    """A sparse matrix as scipy saves it: a ZIP of plain .npy arrays."""
    where = f"the sparse matrix {name!r}"
    if not content.startswith(ZIP_MAGIC):
        raise _refused(SKOPS, "zip", f"{where} is not a ZIP archive", member=name)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except ZIP_ERRORS as e:
        raise _refused(SKOPS, "zip", f"{where} is a corrupt ZIP archive: {e}", member=name) from None
    with archive:
        for info in _check_archive(archive, len(content), where, limits, budget):
            if not NPZ_MEMBER.fullmatch(info.filename):
                raise _refused(SKOPS, "zip", f"unexpected member {info.filename!r} in {where}",
                               member=f"{name}/{info.filename}")
            prefix, length = _read_member(archive, info, where, SNIFF_BYTES)
            _refuse_pickled_member(f"{name}/{info.filename}", prefix)
            _check_npy(f"{name}/{info.filename}", prefix, length)


@dataclass(frozen=True, slots=True)
class _SchemaSummary:
    protocol: int
    version: str | None
    estimator: str
    classes: tuple[str, ...]


MAX_CLASSES = 10_000


def _read_schema(raw: bytes, members: set[str]) -> _SchemaSummary:
    try:
        schema = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise _refused(SKOPS, "zip", f"schema.json is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(schema, dict):
        raise _refused(SKOPS, "zip", "schema.json is not a JSON object")
    protocol = schema.get("protocol")
    if isinstance(protocol, bool) or not isinstance(protocol, int) or protocol < 0:
        raise _refused(SKOPS, "zip", f"schema.json has no valid skops protocol: {protocol!r:.100}")
    for key in ("__class__", "__module__", "__loader__"):
        if not isinstance(schema.get(key), str):
            raise _refused(SKOPS, "zip", f"schema.json lacks the skops field {key!r}")
    version = schema.get("_skops_version")
    if version is not None and not isinstance(version, str):
        raise _refused(SKOPS, "zip", "schema.json has a _skops_version that is not a string")
    classes: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        cls, module = node.get("__class__"), node.get("__module__")
        if isinstance(cls, str) and isinstance(module, str) and module != "builtins":
            if len(classes) < MAX_CLASSES:
                classes.add(f"{module}.{cls}")
        file = node.get("file")
        if "__loader__" in node and file is not None and (not isinstance(file, str)
                                                          or file not in members):
            raise _refused(SKOPS, "zip", f"schema.json refers to {str(file)[:MAX_NAME]!r}, "
                           "which the archive does not hold", member=str(file)[:MAX_NAME])
    return _SchemaSummary(protocol, version, f"{schema['__module__']}.{schema['__class__']}",
                          tuple(sorted(classes)))


# --- NumPy arrays ---------------------------------------------------------------------------------

MAX_NPY_HEADER = 64 * KiB
SIMPLE_DESCR = re.compile(r"[<>|=]?(?P<kind>[a-zA-Z?])(?P<size>\d*)(?:\[\w+\])?")
PLAIN_KINDS = frozenset("biufcmMSUV")


def _npy_header(prefix: bytes, declared: str, where: str, found: str = "npy",
                **details: Any) -> dict[str, Any]:
    """The header of a .npy file: ``descr``, ``fortran_order``, ``shape`` and its ``end``."""
    def refuse(why: str) -> ValidationError:
        return _refused(declared, found, f"{where} is not a valid NumPy array: {why}", **details)

    if len(prefix) < 10 or not prefix.startswith(NPY_MAGIC):
        raise refuse("no .npy header")
    major = prefix[6]
    if major == 1:
        (length,), start = struct.unpack("<H", prefix[8:10]), 10
    elif major in (2, 3) and len(prefix) >= 12:
        (length,), start = struct.unpack("<I", prefix[8:12]), 12
    else:
        raise refuse(f"unknown .npy version {major}")
    if length > MAX_NPY_HEADER or start + length > len(prefix):
        raise refuse("its header is too long or cut short")
    try:
        text = prefix[start:start + length].decode("utf-8" if major == 3 else "latin-1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError,
            UnicodeDecodeError) as e:
        raise refuse(f"its header does not parse ({type(e).__name__})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise refuse("its header lacks descr, fortran_order or shape")
    shape = header["shape"]
    if (not isinstance(shape, tuple)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            or not isinstance(header["fortran_order"], bool)):
        raise refuse("its shape or fortran_order is malformed")
    if not _descr_valid(header["descr"]):
        raise refuse(f"its dtype {str(header['descr'])[:200]!r} is not one numpy writes")
    return {**header, "end": start + length}


def _descr_valid(descr: Any) -> bool:
    if isinstance(descr, str):
        return SIMPLE_DESCR.fullmatch(descr) is not None
    if isinstance(descr, list) and descr:
        return all(isinstance(f, tuple) and len(f) in (2, 3) and _descr_valid(f[1])
                   and (len(f) == 2 or isinstance(f[2], (int, tuple))) for f in descr)
    return False


def _descr_kinds(descr: Any) -> Iterator[str]:
    if isinstance(descr, str):
        match = SIMPLE_DESCR.fullmatch(descr)
        yield match["kind"] if match else "?"
    else:
        for f in descr:
            yield from _descr_kinds(f[1])


def _descr_needs_pickle(descr: Any) -> bool:
    """Python objects (kind O) and kinds numpy cannot save without pickle (StringDType, T)."""
    return any(kind not in PLAIN_KINDS for kind in _descr_kinds(descr))


def _itemsize(descr: Any) -> int | None:
    if isinstance(descr, str):
        match = SIMPLE_DESCR.fullmatch(descr)
        if not match or not match["size"]:
            return None
        return int(match["size"]) * (4 if match["kind"] == "U" else 1)
    total = 0
    for f in descr:
        size = _itemsize(f[1])
        shape = () if len(f) == 2 else f[2] if isinstance(f[2], tuple) else (f[2],)
        if size is None or not all(isinstance(n, int) and n >= 0 for n in shape):
            return None
        total += size * _product(shape)
    return total


def _product(shape: tuple[int, ...]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def _check_npy(name: str, prefix: bytes, length: int) -> None:
    where = f"member {name!r} of the {SKOPS} archive"
    if not prefix.startswith(NPY_MAGIC):
        raise _refused(SKOPS, "zip", f"{where} is not a NumPy array", member=name)
    header = _npy_header(prefix, SKOPS, where, "zip", member=name)
    if _descr_needs_pickle(header["descr"]):
        raise _pickle_refusal(SKOPS, f"an archive whose member {name!r} is a NumPy array of Python "
                              "objects, stored as a pickle", member=name)
    itemsize = _itemsize(header["descr"])
    if itemsize is not None:
        expected = header["end"] + _product(header["shape"]) * itemsize
        if expected != length:
            raise _refused(SKOPS, "zip", f"{where} is {length} bytes, not the {expected} its "
                           "header implies", member=name)


# --- ONNX -----------------------------------------------------------------------------------------

ONNX = ModelFormat.ONNX.value
VARINT, I64, LEN, I32 = 0, 1, 2, 5
WIRE_SIZES = {I64: 8, I32: 4}
MAX_STRING = 64 * KiB
MAX_NAMES = 100_000
MAX_IR_VERSION = 1000

MODEL_FIELDS = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN,
                20: LEN, 25: LEN, 26: LEN}
"""ModelProto: ir_version, producer_name, producer_version, domain, model_version, doc_string,
graph, opset_import, metadata_props, training_info, functions, configuration."""
MODEL_REPEATED = frozenset({8, 14, 20, 25, 26})
MODEL_MESSAGES = frozenset({14, 20, 25, 26})
GRAPH_FIELDS = {1: LEN, 2: LEN, 5: LEN, 10: LEN, 11: LEN, 12: LEN, 13: LEN, 14: LEN, 15: LEN,
                16: LEN}
GRAPH_STRINGS = frozenset({2, 10})
GRAPH_RESERVED = frozenset({3, 4, 6, 7, 8, 9})


class _WireError(Exception):
    pass


class _Wire:
    """A cursor over protobuf fields between ``pos`` and ``end`` of the blob."""

    def __init__(self, blob: _Blob, start: int, end: int) -> None:
        self.blob = blob
        self.pos = start
        self.end = end

    def varint(self) -> int:
        data = self.blob.read_at(self.pos, min(10, self.end - self.pos))
        value = 0
        for i, byte in enumerate(data):
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if value >= 1 << 64:
                    raise _WireError(f"varint overflows 64 bits at byte {self.pos}")
                self.pos += i + 1
                return value
        raise _WireError(f"varint cut short or longer than 10 bytes at byte {self.pos}")

    def fields(self) -> Iterator[tuple[int, int, int, int]]:
        """Each field as ``(number, wire type, value or start, length)``, bounds checked."""
        while self.pos < self.end:
            at = self.pos
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0 or number >= 1 << 29:
                raise _WireError(f"invalid field number {number} at byte {at}")
            if wire == VARINT:
                yield number, wire, self.varint(), 0
            elif wire in WIRE_SIZES:
                start = self.pos
                self.pos += WIRE_SIZES[wire]
                if self.pos > self.end:
                    raise _WireError(f"field {number} at byte {at} is cut short")
                yield number, wire, start, WIRE_SIZES[wire]
            elif wire == LEN:
                length = self.varint()
                start = self.pos
                if length > self.end - start:
                    raise _WireError(f"field {number} at byte {at} claims {length} bytes, more "
                                     "than remain")
                self.pos = start + length
                yield number, wire, start, length
            else:
                raise _WireError(f"invalid wire type {wire} for field {number} at byte {at}")

    def sub(self, start: int, length: int) -> _Wire:
        return _Wire(self.blob, start, start + length)

    def string(self, start: int, length: int, what: str) -> str:
        if length > MAX_STRING:
            raise _WireError(f"{what} is longer than {MAX_STRING} bytes")
        try:
            return self.blob.read_at(start, length).decode("utf-8")
        except UnicodeDecodeError:
            raise _WireError(f"{what} is not UTF-8") from None


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass
class _OnnxSummary:
    ir_version: int | None = None
    producer_name: str | None = None
    producer_version: str | None = None
    graph: bool = False
    opsets: list[tuple[str, int]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    external_data: list[str] = field(default_factory=list)


def _inspect_onnx(found: str, what: str, blob: _Blob) -> ModelInspection:
    if found not in ("unknown", "text"):
        raise _refused(ONNX, found, f"the {ONNX} model file is {what}, not an ONNX ModelProto")
    summary = _OnnxSummary()
    try:
        _walk_model(_Wire(blob, 0, blob.size), summary)
    except _WireError as e:
        raise _refused(ONNX, found, f"the {ONNX} model file is not a valid ONNX ModelProto: {e} "
                       f"(the file is {what})") from None
    if summary.ir_version is None or not 1 <= summary.ir_version <= MAX_IR_VERSION:
        raise _refused(ONNX, found, f"the {ONNX} model has no valid ir_version "
                       f"({summary.ir_version})")
    if not summary.graph:
        raise _refused(ONNX, found, f"the {ONNX} model has no graph")
    if summary.ir_version >= 3 and not summary.opsets:
        raise _refused(ONNX, found, f"the {ONNX} model imports no operator set")
    for location in summary.external_data:
        if why := _unsafe_path(location):
            raise _refused(ONNX, found, f"the {ONNX} model keeps tensor data at an unsafe "
                           f"location: {why}", location=location[:MAX_NAME])
    return ModelInspection(ModelFormat.ONNX, blob.size, ir_version=summary.ir_version,
                           producer_name=summary.producer_name,
                           producer_version=summary.producer_version,
                           opsets=tuple(summary.opsets), inputs=tuple(summary.inputs),
                           outputs=tuple(summary.outputs),
                           external_data=tuple(sorted(set(summary.external_data))))


def _walk_model(wire: _Wire, summary: _OnnxSummary) -> None:
    seen: set[int] = set()
    for number, wire_type, value, length in wire.fields():
        expected = MODEL_FIELDS.get(number)
        if expected is None:
            raise _WireError(f"ModelProto has no field {number}: foreign or trailing data")
        if wire_type != expected:
            raise _WireError(f"ModelProto field {number} has wire type {wire_type}, not {expected}")
        if number not in MODEL_REPEATED:
            if number in seen:
                raise _WireError(f"ModelProto field {number} appears twice: trailing data?")
            seen.add(number)
        if number == 1:
            summary.ir_version = _signed(value)
        elif number == 2:
            summary.producer_name = wire.string(value, length, "producer_name")
        elif number == 3:
            summary.producer_version = wire.string(value, length, "producer_version")
        elif number == 7:
            summary.graph = True
            _walk_graph(wire.sub(value, length), summary)
        elif number == 8:
            summary.opsets.append(_opset(wire.sub(value, length)))
        elif number in MODEL_MESSAGES:
            _check_message(wire.sub(value, length))


def _check_message(wire: _Wire) -> None:
    """Walk a sub-message's top-level fields only: enough to know its bounds hold."""
    for _ in wire.fields():
        pass


def _opset(wire: _Wire) -> tuple[str, int]:
    domain, version = "", None
    for number, wire_type, value, length in wire.fields():
        if number == 1 and wire_type == LEN:
            domain = wire.string(value, length, "an opset domain")
        elif number == 2 and wire_type == VARINT:
            version = _signed(value)
    if version is None or version < 0:
        raise _WireError(f"the opset import of domain {domain!r} has no valid version")
    return domain or "ai.onnx", version


def _walk_graph(wire: _Wire, summary: _OnnxSummary) -> None:
    for number, wire_type, value, length in wire.fields():
        if number in GRAPH_RESERVED:
            raise _WireError(f"GraphProto field {number} is reserved")
        expected = GRAPH_FIELDS.get(number)
        if expected is not None and wire_type != expected:
            raise _WireError(f"GraphProto field {number} has wire type {wire_type}, not {expected}")
        if number in (11, 12):
            names = summary.inputs if number == 11 else summary.outputs
            name = _value_info_name(wire.sub(value, length))
            if len(names) < MAX_NAMES:
                names.append(name)
        elif number == 5:
            _initializer(wire.sub(value, length), summary)
        elif expected is not None and number not in GRAPH_STRINGS:
            _check_message(wire.sub(value, length))


def _value_info_name(wire: _Wire) -> str:
    name = ""
    for number, wire_type, value, length in wire.fields():
        if number == 1 and wire_type == LEN:
            name = wire.string(value, length, "a graph input or output name")
    return name


def _initializer(wire: _Wire, summary: _OnnxSummary) -> None:
    """TensorProto: note where external data (field 13, key ``location``) says it lives."""
    for number, wire_type, value, length in wire.fields():
        if number == 13 and wire_type == LEN:
            key = entry = None
            for sub_number, sub_type, sub_value, sub_length in wire.sub(value, length).fields():
                if sub_number in (1, 2) and sub_type == LEN:
                    text = wire.string(sub_value, sub_length, "an external data entry")
                    key, entry = (text, entry) if sub_number == 1 else (key, text)
            if key == "location" and entry is not None and len(summary.external_data) < MAX_NAMES:
                summary.external_data.append(entry)
