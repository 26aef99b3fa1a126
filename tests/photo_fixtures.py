"""Small generated stand-ins for the photo corpus's Debian packages: .deb, .rcc and .edj files.

Nothing here is downloaded: the pictures are crops of scikit-image's bundled photos, the
containers are written from their binary layouts (the inverse of
`denoise_jax.data.containers`), and the packages are built with `dpkg-deb --build`.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image

from denoise_jax.data import photos


def encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A [h, w, 3] uint8 crop of a real photo, different per seed."""
    import skimage.data

    image = skimage.data.astronaut()
    top, left = 7 * seed % (512 - h), 13 * seed % (512 - w)
    return np.ascontiguousarray(image[top:top + h, left:left + w])


def rcc(files: dict[str, bytes], compressed: tuple[str, ...] = ()) -> bytes:
    """A Qt rcc (format version 2) holding `files` ({"/dir/name": bytes}); `compressed` ones
    stored as qCompress (zlib) data."""
    tree: dict = {}
    for path, data in files.items():
        node = tree
        *dirs, leaf = path.strip("/").split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = (path, data)
    names, payload, nodes = bytearray(), bytearray(), []
    name_at: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            text = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + text)
        return name_at[name]

    # breadth first, so each directory's children get consecutive indices
    nodes.append(["", tree])
    queue = [0]
    records: dict[int, bytes] = {}
    while queue:
        index = queue.pop(0)
        name, content = nodes[index]
        if isinstance(content, dict):
            first = len(nodes)
            for child in sorted(content):
                nodes.append([child, content[child]])
                queue.append(len(nodes) - 1)
            records[index] = struct.pack(">IHIIQ", name_offset(name), 0x02, len(content),
                                         first, 0)
        else:
            path, data = content
            flags = 0
            if path in compressed:
                data = struct.pack(">I", len(data)) + zlib.compress(data)
                flags = 0x01
            offset = len(payload)
            payload.extend(struct.pack(">I", len(data)) + data)
            records[index] = struct.pack(">IHHHIQ", name_offset(name), flags, 0, 0, offset, 0)
    tree_bytes = b"".join(records[i] for i in range(len(nodes)))
    header = 20
    tree_at, payload_at = header, header + len(tree_bytes)
    names_at = payload_at + len(payload)
    return (b"qres" + struct.pack(">4I", 2, tree_at, payload_at, names_at) + tree_bytes
            + bytes(payload) + bytes(names))


def eet(entries: dict[str, bytes], compressed: tuple[str, ...] = ()) -> bytes:
    """An Eet file (what Edje .edj files are) holding `entries`."""
    count = len(entries)
    table_end = 12 + 24 * count
    names = b"".join(n.encode() + b"\0" for n in entries)
    data_at = table_end + len(names)
    table, blobs, name_at = bytearray(), bytearray(), table_end
    for name, data in entries.items():
        stored = zlib.compress(data) if name in compressed else data
        flags = 1 if name in compressed else 0
        table += struct.pack(">6I", data_at + len(blobs), len(stored), len(data), name_at,
                             len(name) + 1, flags)
        blobs += stored
        name_at += len(name) + 1
    return struct.pack(">3I", 0x1EE70F42, count, 0) + bytes(table) + names + bytes(blobs)


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2+

Files: usr/share/fixture/edj/*
License: BSD-2-clause
"""


def deb(folder: str, package: str, version: str, files: dict[str, bytes]) -> str:
    """Builds <folder>/<package>_<version>_all.deb holding `files` (paths inside the package)."""
    root = os.path.join(folder, f"{package}-root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "DEBIAN"))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
                "Maintainer: Tests <tests@example.org>\nDescription: test fixture\n")
    files = {f"usr/share/doc/{package}/copyright": COPYRIGHT.encode(), **files}
    for path, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "wb") as f:
            f.write(data)
    out = os.path.join(folder, f"{package}_{version.replace(':', '%3a')}_all.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out],
                   check=True, capture_output=True)
    return out


PACKAGE, VERSION = "fixture-photos", "1.0-1"
SOURCES = (
    photos.Source(PACKAGE, VERSION, "fix", (
        "usr/share/fixture/jpg/*.jpg",
        "usr/share/fixture/res.rcc:/res/pictures/*.webp",
        "usr/share/fixture/edj/*.edj",
    ), exclude=frozenset({"drawing.jpg"}), low_bitrate_downscale=3,
        overrides=(("big.jpg", 4),)),
)
VAL = frozenset({"fix-a", "fix-res-w1"})


def package_files(changed: bool = False) -> dict[str, bytes]:
    """The fixture package: 2 JPEGs + 1 drawing (excluded), an .rcc with two WebPs (one
    zlib-compressed) and a text file, an .edj with a small and a large JPEG."""
    a = photo(1)
    if changed:
        a = a.copy()
        a[:8, :8] = 255
    webp = {"/res/pictures/w1.webp": encode(photo(2), "WEBP", quality=95),
            "/res/pictures/w2.webp": encode(photo(3), "WEBP", quality=95),
            "/res/readme.txt": b"not a picture"}
    edj = eet({"edje/images/0": encode(photo(4, 24, 32), "JPEG", quality=95),
               "edje/images/1": encode(photo(5, 96, 128), "JPEG", quality=95),
               "edje/file": b"\x00" * 40}, compressed=("edje/file",))
    return {
        "usr/share/fixture/jpg/a.jpg": encode(a, "JPEG", quality=95),
        "usr/share/fixture/jpg/big.jpg": encode(photo(6, 96, 128), "JPEG", quality=95),
        "usr/share/fixture/jpg/drawing.jpg": encode(np.zeros((8, 8, 3), np.uint8), "JPEG"),
        "usr/share/fixture/res.rcc": rcc(webp, compressed=("/res/pictures/w2.webp",)),
        "usr/share/fixture/edj/scene.edj": edj,
    }


def build_debs(folder: str, changed: bool = False, version: str = VERSION) -> str:
    os.makedirs(folder, exist_ok=True)
    deb(folder, PACKAGE, version, package_files(changed))
    return folder
