"""Reading BTF type information: event struct layouts as numpy dtypes, and global variables' places."""

from __future__ import annotations

import ctypes as C
from dataclasses import dataclass

from gadgetbook.kernel import libbpf

# BTF kinds (include/uapi/linux/btf.h).
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
_MODIFIERS = {TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG}
_INT_SIGNED, _INT_CHAR, _INT_BOOL = 1, 2, 4


class BtfError(Exception):
    """The object's BTF lacks something the gadget needs."""


@dataclass(frozen=True)
class Member:
    """One member of an event struct, flattened: nested structs become their own members."""

    name: str
    offset: int
    dtype: str  # numpy dtype string: "<u4", "S16", "<i8", ...
    shape: tuple[int, ...] = ()


class Btf:
    """A view over a `struct btf *` owned by libbpf (an object's, or one parsed from a file)."""

    def __init__(self, handle: int, owned: bool = False) -> None:
        if not handle:
            raise BtfError("no BTF")
        self._h = handle
        self._owned = owned

    @classmethod
    def from_file(cls, path: str) -> Btf:
        handle = libbpf.btf_parse(path.encode(), None)
        if not handle or libbpf.libbpf_get_error(handle):
            raise BtfError(f"cannot read BTF from {path}: {libbpf.errno_message()}")
        return cls(handle, owned=True)

    def close(self) -> None:
        if self._owned and self._h:
            libbpf.btf_free(self._h)
        self._h = 0

    def _words(self, type_id: int, count: int) -> C.Array:
        ptr = libbpf.btf_type_by_id(self._h, type_id)
        if not ptr:
            raise BtfError(f"no BTF type {type_id}")
        return C.cast(ptr, C.POINTER(C.c_uint32 * count)).contents

    def _header(self, type_id: int) -> tuple[str, int, int, int, int]:
        """name, kind, vlen, kind_flag, size_or_type"""
        name_off, info, size_or_type = self._words(type_id, 3)
        name = libbpf.btf_name_by_offset(self._h, name_off) or b""
        return name.decode(), (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, size_or_type

    def _tail(self, type_id: int, words: int) -> list[int]:
        return list(self._words(type_id, 3 + words))[3:]

    def name_of(self, off: int) -> str:
        return (libbpf.btf_name_by_offset(self._h, off) or b"").decode()

    def find(self, name: str, kind: int) -> int:
        type_id = libbpf.btf_find_by_name_kind(self._h, name.encode(), kind)
        if type_id < 0:
            raise BtfError(f"no BTF type named {name!r}")
        return type_id

    def strip(self, type_id: int) -> int:
        """Follow typedefs and qualifiers to the underlying type."""
        while True:
            _, kind, _, _, nxt = self._header(type_id)
            if kind not in _MODIFIERS:
                return type_id
            type_id = nxt

    def size_of(self, type_id: int) -> int:
        type_id = self.strip(type_id)
        _, kind, _, _, size = self._header(type_id)
        if kind == ARRAY:
            elem, _, nelems = self._tail(type_id, 3)
            return self.size_of(elem) * nelems
        if kind == PTR:
            return 8
        return size

    def struct_name(self, type_id: int) -> str:
        return self._header(self.strip(type_id))[0]

    def members(self, type_id: int) -> list[tuple[str, int, int]]:
        """(name, type id, byte offset) of a struct's members."""
        type_id = self.strip(type_id)
        _, kind, vlen, kind_flag, _ = self._header(type_id)
        if kind not in (STRUCT, UNION):
            raise BtfError(f"BTF type {type_id} is not a struct")
        raw = self._tail(type_id, 3 * vlen)
        out = []
        for i in range(vlen):
            name_off, mtype, off = raw[3 * i: 3 * i + 3]
            bit_size = off >> 24 if kind_flag else 0
            bit_off = off & 0xFFFFFF if kind_flag else off
            if bit_size or bit_off % 8:
                raise BtfError(f"bitfield {self.name_of(name_off)!r} in an event struct is not supported")
            out.append((self.name_of(name_off), mtype, bit_off // 8))
        return out

    def flat_members(self, type_id: int, base: int = 0) -> list[tuple[str, int, int, str]]:
        """Members with nested structs flattened: (name, type id, offset, parent struct name)."""
        parent = self.struct_name(type_id)
        out = []
        for name, mtype, off in self.members(type_id):
            if self._header(self.strip(mtype))[1] == STRUCT:
                out.extend(self.flat_members(mtype, base + off))
            else:
                out.append((name, mtype, base + off, parent))
        return out

    def numpy_type(self, type_id: int) -> tuple[str, tuple[int, ...]]:
        """The numpy dtype string and shape for a scalar or array member."""
        type_id = self.strip(type_id)
        name, kind, _, _, size = self._header(type_id)
        if kind == INT:
            (enc,) = self._tail(type_id, 1)
            encoding = (enc >> 24) & 0xF
            if encoding & _INT_BOOL:
                return "?", ()
            signed = "i" if encoding & _INT_SIGNED else "u"
            return f"<{signed}{size}", ()
        if kind in (ENUM, ENUM64):
            return f"<i{size}", ()
        if kind == FLOAT:
            return f"<f{size}", ()
        if kind == PTR:
            return "<u8", ()
        if kind == ARRAY:
            elem, _, nelems = self._tail(type_id, 3)
            elem = self.strip(elem)
            ename, ekind, _, _, esize = self._header(elem)
            if ekind == INT and esize == 1 and ename == "char":
                return f"S{nelems}", ()
            edtype, eshape = self.numpy_type(elem)
            return edtype, (nelems, *eshape)
        raise BtfError(f"BTF type {name or type_id} cannot be a field of an event")

    def struct_members(self, type_id: int) -> list[Member]:
        return [
            Member(name, off, *self.numpy_type(mtype))
            for name, mtype, off, _ in self.flat_members(type_id)
        ]

    def var_type(self, var_name: str) -> int:
        return self._header(self.find(var_name, VAR))[4]

    def pointee(self, type_id: int) -> int:
        type_id = self.strip(type_id)
        _, kind, _, _, target = self._header(type_id)
        if kind != PTR:
            raise BtfError(f"BTF type {type_id} is not a pointer")
        return self.strip(target)

    def datasec(self, section: str) -> dict[str, tuple[int, int]]:
        """Variables of a data section (e.g. .rodata): name -> (offset, size)."""
        sec = self.find(section, DATASEC)
        _, _, vlen, _, _ = self._header(sec)
        raw = self._tail(sec, 3 * vlen)
        out = {}
        for i in range(vlen):
            var, off, size = raw[3 * i: 3 * i + 3]
            out[self._header(var)[0]] = (off, size)
        return out

    def declared(self, section: str) -> set[str]:
        """Names of a data section's variables; empty when the object has no such section."""
        try:
            return set(self.datasec(section))
        except BtfError:
            return set()

    def kind(self, type_id: int) -> int:
        return self._header(type_id)[1]

    def named_structs(self) -> dict[str, int]:
        """Every named struct of this BTF: name -> type id."""
        out = {}
        for type_id in range(1, libbpf.btf_type_cnt(self._h)):
            name, kind, _, _, _ = self._header(type_id)
            if kind == STRUCT and name:
                out.setdefault(name, type_id)
        return out

    def map_definitions(self) -> dict[str, dict[str, int]]:
        """Maps declared in the .maps section, as libbpf reads them: name -> {"type": BPF_MAP_TYPE_*,
        "max_entries": n, "key_size"/"value_size": bytes, "key"/"value": BTF type id}."""
        try:
            sec = self.find(".maps", DATASEC)
        except BtfError:
            return {}
        _, _, vlen, _, _ = self._header(sec)
        raw = self._tail(sec, 3 * vlen)
        out: dict[str, dict[str, int]] = {}
        for i in range(vlen):
            var = raw[3 * i]
            name, _, _, _, var_type = self._header(var)
            fields: dict[str, int] = {}
            try:
                members = self.members(var_type)
            except BtfError:
                continue
            for member, mtype, _ in members:
                target = self.pointee(mtype) if self.kind(self.strip(mtype)) == PTR else None
                if target is None:
                    continue
                if member in ("key", "value"):
                    fields[member] = target
                elif self.kind(target) == ARRAY:  # __uint(name, n) is `int (*name)[n]`
                    fields[member] = self._tail(target, 3)[2]
            out[name] = fields
        return out
