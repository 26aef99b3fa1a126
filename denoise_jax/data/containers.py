"""Readers for the resource containers that hold the photo corpus's pictures.

    for path, data in rcc_files(open("erase.rcc", "rb").read()): ...   # Qt resources
    for name, data in eet_entries(open("Red-Maple.edj", "rb").read()): ...  # EFL Eet / Edje

Both are parsed from their documented binary layouts with the standard library only (no Qt
or EFL install), and both raise `ValueError` on anything malformed, naming what was wrong.

Qt `.rcc` (rcc format versions 1-3): "qres", version, tree, data and names offsets (32-bit
big-endian). Tree nodes are 14 bytes (v1) or 22 bytes (v2+: a 64-bit mtime appended):
name offset, flags (0x01 zlib as qCompress, 0x02 directory, 0x04 zstd), then either child
count + first child index, or locale + data offset. Names are a 16-bit length, a 32-bit hash
and UTF-16BE text; data is a 32-bit length then the bytes.

Eet (magic 0x1ee70f42, what Edje `.edj` files are): header of three 32-bit big-endian ints
(magic, entries, dictionary entries), then per entry six ints: offset, stored size, size,
name offset, name size, flags (bit 0: compressed; the compression kind in bits 4-7,
0 = zlib, 1/2 = lz4). Edje stores its images as entries `edje/images/N` holding plain JPEG.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

RCC_MAGIC = b"qres"
EET_MAGIC = 0x1EE70F42
_RCC_COMPRESSED, _RCC_DIRECTORY, _RCC_ZSTD = 0x01, 0x02, 0x04


def _unpack(fmt: str, data: bytes, offset: int, what: str) -> tuple:
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        raise ValueError(f"truncated: {what} at byte {offset} runs past the end "
                         f"({len(data)} bytes)")
    return struct.unpack_from(fmt, data, offset)


def rcc_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Every file in a Qt binary resource: ("/dir/name.ext", uncompressed bytes)."""
    if data[:4] != RCC_MAGIC:
        raise ValueError("not a Qt resource file (no 'qres' magic)")
    version, tree, payload, names = _unpack(">4I", data, 4, "header")
    if version not in (1, 2, 3):
        raise ValueError(f"unsupported rcc format version {version}")
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = _unpack(">H", data, names + offset, "name")
        start = names + offset + 6
        if start + 2 * length > len(data):
            raise ValueError("truncated: a resource name runs past the end")
        return data[start:start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str, depth: int) -> Iterator[tuple[str, bytes]]:
        if depth > 64:
            raise ValueError("resource tree too deep (a loop?)")
        at = tree + index * node_size
        name_offset, flags = _unpack(">IH", data, at, "tree node")
        if flags & _RCC_DIRECTORY:
            count, first = _unpack(">II", data, at + 6, "directory node")
            for child in range(first, first + count):
                child_at = tree + child * node_size
                (child_name,) = _unpack(">I", data, child_at, "tree node")
                yield from walk(child, f"{prefix}/{name(child_name)}", depth + 1)
            return
        (offset,) = _unpack(">I", data, at + 10, "file node")
        (length,) = _unpack(">I", data, payload + offset, "file data")
        blob = data[payload + offset + 4:payload + offset + 4 + length]
        if len(blob) != length:
            raise ValueError(f"truncated: {prefix} runs past the end")
        yield prefix, _rcc_decompress(blob, flags, prefix)

    yield from walk(0, "", 0)


def _rcc_decompress(blob: bytes, flags: int, path: str) -> bytes:
    if flags & _RCC_ZSTD:
        raise ValueError(f"{path} is zstd-compressed, which this reader does not handle")
    if not flags & _RCC_COMPRESSED:
        return blob
    try:  # qCompress: a 32-bit big-endian uncompressed size, then a zlib stream
        return zlib.decompress(blob[4:])
    except zlib.error as e:
        raise ValueError(f"{path}: bad zlib data ({e})") from None


def eet_entries(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Every entry of an Eet file (Edje `.edj`): (name, uncompressed bytes)."""
    magic, count, _ = _unpack(">3I", data, 0, "header")
    if magic != EET_MAGIC:
        raise ValueError("not an Eet file (bad magic)")
    for i in range(count):
        offset, stored, size, name_at, name_size, flags = _unpack(
            ">6I", data, 12 + 24 * i, f"directory entry {i}")
        name = data[name_at:name_at + name_size].rstrip(b"\0").decode("utf-8", "replace")
        blob = data[offset:offset + stored]
        if len(blob) != stored:
            raise ValueError(f"truncated: entry {name!r} runs past the end")
        if flags & 1:
            kind = (flags >> 4) & 0xF
            if kind != 0:  # lz4 variants: the pictures Edje stores are plain JPEG, uncompressed
                continue
            try:
                blob = zlib.decompress(blob)
            except zlib.error as e:
                raise ValueError(f"entry {name!r}: bad zlib data ({e})") from None
            if len(blob) != size:
                raise ValueError(f"entry {name!r}: {len(blob)} bytes where {size} were declared")
        yield name, blob
