"""Write a small HDF5 file with numpy alone: nested groups of float32 datasets, what Keras weights need.

h5py is not among the wheels this site vendors (Pyodide builds one, but the build's offline
sources do not carry it, and it would add megabytes of libhdf5 for a few kilobytes of weights),
so the page writes the subset of the format Keras 3's ``model.weights.h5`` uses itself (HDF5 spec,
"Disk Format Level 0-2"): a version 0 superblock; groups as symbol tables (a version 1
B-tree with one symbol-table node and a local heap of names); datasets as version 1 object
headers (dataspace, little-endian IEEE float32 datatype, fill value, contiguous layout).
No attributes, no chunking, no compression. libhdf5 (h5py) and pyfive read the result;
tests/test_keras_export.py checks both and Keras's own loader.

Example::

    >>> import io, numpy as np, h5py
    >>> data = write_hdf5({"layers": {"dense": {"vars": {"0": np.eye(2), "1": np.zeros(2)}}}, "vars": {}})
    >>> with h5py.File(io.BytesIO(data), "r") as f:
    ...     print(sorted(f), f["layers/dense/vars/0"][()].tolist(), f["layers/dense/vars/1"].dtype)
    ['layers', 'vars'] [[1.0, 0.0], [0.0, 1.0]] float32
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Union

import numpy as np

from pyapp.errors import ConvertError

Tree = Mapping[str, Union["Tree", np.ndarray]]

_UNDEFINED = 0xFFFF_FFFF_FFFF_FFFF  # the "undefined address" (all bits set)
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_LEAF_K = 32  # a symbol-table node holds up to 2K = 64 members: one node per group is enough here
_INTERNAL_K = 16
_FREE_NULL = 1  # libhdf5's "end of the local heap's free list" (H5HL_FREE_NULL): no free block


def _pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


class _Writer:
    """Appends objects to one buffer, each 8-byte aligned, and returns their addresses."""

    def __init__(self) -> None:
        self.buf = bytearray(96)  # the superblock, written last (it points at the root group)

    def put(self, data: bytes) -> int:
        self.buf += bytes(-len(self.buf) % 8)
        address = len(self.buf)
        self.buf += data
        return address

    @staticmethod
    def header(messages: list[tuple[int, bytes]]) -> bytes:
        """A version 1 object header: 16-byte prefix, then each message (type, size, flags) padded to 8 bytes."""
        body = b"".join(struct.pack("<HHB3x", kind, len(_pad8(data)), 0) + _pad8(data) for kind, data in messages)
        return struct.pack("<BBHII4x", 1, 0, len(messages), 1, len(body)) + body

    def dataset(self, array: np.ndarray, where: str) -> int:
        if array.dtype.kind not in "fiub":
            raise ConvertError(f"{where}: only numeric arrays can be written, not {array.dtype}")
        value = np.asarray(array, dtype="<f4")  # not ascontiguousarray: that makes a scalar 1-d
        if not np.isfinite(value).all():
            raise ConvertError(f"{where}: holds NaN or infinite values")
        data = self.put(value.tobytes()) if value.size else _UNDEFINED
        if value.ndim:  # version 1: rank, then each dimension
            dataspace = struct.pack("<BBBB4x", 1, value.ndim, 0, 0) + b"".join(
                struct.pack("<Q", d) for d in value.shape
            )
        else:  # a scalar needs version 2, which names its type (0: scalar); version 1 reads rank 0 as (1,)
            dataspace = struct.pack("<BBBB", 2, 0, 0, 0)
        # Class 1 (floating point), version 1; little-endian, implied leading mantissa bit, sign at bit 31;
        # 4 bytes; bit offset 0, precision 32, exponent at 23 (8 bits), mantissa at 0 (23 bits), bias 127.
        datatype = bytes([0x11, 0x20, 31, 0]) + struct.pack("<IHHBBBBI", 4, 0, 32, 23, 8, 0, 23, 127)
        fill = bytes([2, 1, 2, 0])  # version 2: space allocated early, written if set, no fill value defined
        layout = struct.pack("<BBQQ", 3, 1, data, value.nbytes)  # version 3, contiguous: address and size
        return self.put(self.header([(1, dataspace), (3, datatype), (5, fill), (8, layout)]))

    def group(self, members: Tree, where: str) -> tuple[int, int, int]:
        """(object header, B-tree, local heap) addresses of a group holding ``members``, written first."""
        names = sorted(members, key=lambda n: n.encode())  # libhdf5 looks names up by binary search
        if len(names) > 2 * _LEAF_K:
            raise ConvertError(f"{where}: {len(names)} members, over the {2 * _LEAF_K} this writer puts in a group")
        children = []
        for name in names:
            if not name or "/" in name or "\0" in name:
                raise ConvertError(f"{where}: bad member name {name!r}")
            member = members[name]
            path = f"{where.rstrip('/')}/{name}"
            if isinstance(member, Mapping):
                children.append(self.group(member, path)[0])
            else:
                children.append(self.dataset(np.asarray(member), path))
        heap = bytearray(8)  # offset 0: the empty name (the B-tree's first key)
        offsets = []
        for name in names:
            offsets.append(len(heap))
            heap += _pad8(name.encode() + b"\0")
        heap_data = self.put(bytes(heap))
        heap_at = self.put(b"HEAP" + bytes(4) + struct.pack("<QQQ", len(heap), _FREE_NULL, heap_data))
        btree = b"TREE" + struct.pack("<BBH", 0, 0, 1 if names else 0) + struct.pack("<QQ", _UNDEFINED, _UNDEFINED)
        if names:
            entries = b"".join(
                struct.pack("<QQII16x", off, at, 0, 0) for off, at in zip(offsets, children, strict=True)
            )
            node = b"SNOD" + struct.pack("<BBH", 1, 0, len(names)) + entries
            node += bytes(8 + 2 * _LEAF_K * 40 - len(node))  # libhdf5 reads a node's full size
            btree += struct.pack("<QQQ", 0, self.put(node), offsets[-1])
        else:
            btree += struct.pack("<Q", 0)
        btree += bytes(24 + (2 * _INTERNAL_K + 1) * 8 + 2 * _INTERNAL_K * 8 - len(btree))
        btree_at = self.put(btree)
        return self.put(self.header([(0x11, struct.pack("<QQ", btree_at, heap_at))])), btree_at, heap_at


def write_hdf5(tree: Tree) -> bytes:
    """An HDF5 file of nested groups (dicts) and float32 datasets (arrays, converted), as bytes.

    >>> write_hdf5({"a": {"b/c": np.zeros(1)}})
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: /a: bad member name 'b/c'
    """
    writer = _Writer()
    root, btree, heap = writer.group(tree, "/")
    writer.put(b"")  # align the end of file
    superblock = (
        _SIGNATURE
        + bytes([0, 0, 0, 0, 0, 8, 8, 0])  # versions 0; 8-byte offsets and lengths
        + struct.pack("<HHI", _LEAF_K, _INTERNAL_K, 0)
        + struct.pack("<QQQQ", 0, _UNDEFINED, len(writer.buf), _UNDEFINED)  # base, free space, end of file, driver
        + struct.pack("<QQII", 0, root, 1, 0)  # the root's symbol table entry, its B-tree and heap cached
        + struct.pack("<QQ", btree, heap)
    )
    writer.buf[: len(superblock)] = superblock
    return bytes(writer.buf)
