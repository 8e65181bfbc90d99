"""A reader of murr segment files, written from docs/format.md alone (no murr code), to prove the
document is enough for a program in another language: it checks the trailer, the header and both
checksums, parses the footer, reads any row of the scalar columns (fixed, inline, variable and
sparse storage) and finds a key through the segment's own index.

Lists are left out: docs/format.md's "Lists" section is read by murr's own reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import xxhash

MAGIC = b"MURRSEG\0"
KNOWN_VERSIONS = range(1, 6)

# Type codes (docs/format.md, "Type codes"): struct format of the fixed-width ones.
FIXED = {2: "?", 3: "b", 4: "h", 5: "i", 6: "q", 7: "B", 8: "H", 9: "I", 10: "Q", 11: "f", 12: "d", 13: "e", 15: "i", 64: "q"}
UTF8, BINARY = 1, 14


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        if len(out) != n:
            raise ValueError("footer ends early")
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def i64(self) -> int:
        return struct.unpack("<q", self.take(8))[0]

    def section(self) -> tuple[int, int]:
        return self.u64(), self.u64()

    def name(self) -> str:
        return self.take(self.u16()).decode("utf-8")


@dataclass
class Column:
    name: str
    code: int
    params: bytes
    nullable: bool
    null_bit: int | None
    kind: int
    storage: dict


class Segment:
    """One segment file, validated as docs/format.md's "Validation" and "Reading" sections say."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 96:
            raise ValueError("too short for a header and a trailer")
        trailer = data[-32:]
        footer_offset, footer_len, footer_crc, body_crc, version = struct.unpack("<QIIII", trailer[:24])
        if trailer[24:] != MAGIC or data[:8] != MAGIC:
            raise ValueError("not a murr segment (magic)")
        if struct.unpack("<I", data[8:12])[0] != version or version not in KNOWN_VERSIONS:
            raise ValueError(f"version {version} is not one this reader knows")
        if any(data[12:64]):
            raise ValueError("reserved header bytes are not zero")
        if footer_offset + footer_len != len(data) - 32:
            raise ValueError("footer bounds")
        footer = data[footer_offset : footer_offset + footer_len]
        if crc32c(footer) != footer_crc:
            raise ValueError("footer checksum mismatch")
        if crc32c(data[64:footer_offset]) != body_crc:
            raise ValueError("body checksum mismatch")
        self.version = version
        g = Reader(footer)
        self.rows = g.u64()
        self.row_width = g.u32()
        self.validity_offset = g.u32()
        self.rows_section = g.section()
        self.key_column = g.u32()
        self.index_section = g.section()
        self.slot_width = g.u8()
        self.capacity = g.u64()
        self.hash_algo = g.u8()
        self.seed = g.u64() if version >= 3 else 0
        self.written = None
        self.sparse = None
        if version >= 5:
            self.written = (g.i64(), g.i64())
            if g.u8() != 0:
                g.section()
                g.section()
            pointer_width = g.u8()
            if pointer_width != 0:
                self.sparse = (pointer_width, g.u32(), g.section())
        self.columns = []
        for _ in range(g.u32()):
            name = g.name()
            code = g.u8()
            params = g.take(g.u16())
            nullable = g.u8() != 0
            bit = g.u32()
            kind = g.u8()
            if kind in (0, 2):
                storage = {"offset": g.u32(), "width": g.u8()}
            elif kind == 1:
                storage = {"offsets": g.section(), "data": g.section(), "offset_width": g.u8()}
            elif kind == 4:
                storage = {"width": g.u8()}
            elif kind == 3:
                storage = {"offsets": g.section(), "offset_width": g.u8(), "item_validity": g.section()}
                if g.u8() == 0:
                    storage["items"] = (g.section(), g.u8())
                else:
                    storage["items"] = (g.section(), g.section(), g.u8())
            else:
                raise ValueError(f"unknown storage kind {kind}")
            self.columns.append(Column(name, code, params, nullable, None if bit == 0xFFFFFFFF else bit, kind, storage))
        if g.pos != len(footer):
            raise ValueError("trailing footer bytes")

    def row(self, r: int) -> bytes:
        start = self.rows_section[0] + r * self.row_width
        return self.data[start : start + self.row_width]

    def valid(self, column: Column, row: bytes) -> bool:
        if column.null_bit is None:
            return True
        b = column.null_bit
        return bool(row[self.validity_offset + b // 8] >> (b % 8) & 1)

    def value(self, column: Column, r: int):
        row = self.row(r)
        if not self.valid(column, row):
            return None
        s = column.storage
        if column.kind == 0:
            raw = row[s["offset"] : s["offset"] + s["width"]]
        elif column.kind == 2:
            length = min(row[s["offset"]], s["width"])
            raw = row[s["offset"] + 1 : s["offset"] + 1 + length]
        elif column.kind == 1:
            (off, _), (data, _), w = s["offsets"], s["data"], s["offset_width"]
            fmt = "<I" if w == 4 else "<Q"
            a = struct.unpack_from(fmt, self.data, off + r * w)[0]
            b = struct.unpack_from(fmt, self.data, off + (r + 1) * w)[0]
            raw = self.data[data + a : data + b]
        elif column.kind == 4:
            raw = self.sparse_value(column, row)
        else:
            raise NotImplementedError("lists")
        if column.code in (UTF8, BINARY):
            return raw.decode("utf-8") if column.code == UTF8 else bytes(raw)
        return struct.unpack("<" + FIXED[column.code], raw)[0]

    def sparse_value(self, column: Column, row: bytes) -> bytes:
        pointer_width, pointer, (records, _) = self.sparse
        fmt = "<I" if pointer_width == 4 else "<Q"
        at = records + struct.unpack_from(fmt, row, pointer)[0]
        # The value of the column with bit b starts after the valid values of the sparse columns
        # with a lower bit ("Sparse columns").
        for other in self.columns:
            if other.kind == 4 and other.null_bit < column.null_bit and self.valid(other, row):
                at += other.storage["width"]
        return self.data[at : at + column.storage["width"]]

    def key(self, r: int) -> bytes:
        v = self.value(self.columns[self.key_column], r)
        return v.encode("utf-8") if isinstance(v, str) else v

    def find(self, key: bytes) -> int | None:
        """The row holding the encoded key `key`, through the key index ("Key index")."""
        h = xxhash.xxh3_64_intdigest(key, seed=self.seed if self.hash_algo == 2 else 0)
        slot = (h * self.capacity) >> 64
        w = self.slot_width
        empty = (1 << (8 * w)) - 1
        tag_shift, tag_mask = (24, 0xFF) if w == 4 else (32, 0xFFFFFFFF)
        for _ in range(self.capacity):
            at = self.index_section[0] + slot * w
            s = int.from_bytes(self.data[at : at + w], "little")
            if s == empty:
                return None
            if s >> tag_shift == h & tag_mask:
                r = s & ((1 << tag_shift) - 1)
                if r < self.rows and self.key(r) == key:
                    return r
            slot = (slot + 1) % self.capacity
        return None
