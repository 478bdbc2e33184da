"""ctypes binding to the system libbpf (libbpf.so.1): the calls gadgetbook uses, and libbpf's log."""

from __future__ import annotations

import ctypes as C
import os
import threading

from gadgetbook.kernel.system_library import open_library

_vp = C.c_void_p

lib = open_library("libbpf.so.1", "libbpf1", ImportError, use_errno=True)
_libc = C.CDLL(None, use_errno=True)


def _fn(name: str, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


object_open_file = _fn("bpf_object__open_file", _vp, C.c_char_p, _vp)
object_load = _fn("bpf_object__load", C.c_int, _vp)
object_close = _fn("bpf_object__close", None, _vp)
object_btf = _fn("bpf_object__btf", _vp, _vp)
object_next_program = _fn("bpf_object__next_program", _vp, _vp, _vp)
object_next_map = _fn("bpf_object__next_map", _vp, _vp, _vp)
object_find_map_by_name = _fn("bpf_object__find_map_by_name", _vp, _vp, C.c_char_p)

program_name = _fn("bpf_program__name", C.c_char_p, _vp)
program_section_name = _fn("bpf_program__section_name", C.c_char_p, _vp)
program_set_autoload = _fn("bpf_program__set_autoload", C.c_int, _vp, C.c_bool)
program_autoload = _fn("bpf_program__autoload", C.c_bool, _vp)
program_attach = _fn("bpf_program__attach", _vp, _vp)
program_attach_perf_event = _fn("bpf_program__attach_perf_event", _vp, _vp, C.c_int)
program_fd = _fn("bpf_program__fd", C.c_int, _vp)
link_destroy = _fn("bpf_link__destroy", C.c_int, _vp)

map_name = _fn("bpf_map__name", C.c_char_p, _vp)
map_fd = _fn("bpf_map__fd", C.c_int, _vp)
map_set_max_entries = _fn("bpf_map__set_max_entries", C.c_int, _vp, C.c_uint32)
map_max_entries = _fn("bpf_map__max_entries", C.c_uint32, _vp)
map_initial_value = _fn("bpf_map__initial_value", _vp, _vp, C.POINTER(C.c_size_t))
map_key_size = _fn("bpf_map__key_size", C.c_uint32, _vp)
map_value_size = _fn("bpf_map__value_size", C.c_uint32, _vp)
map_type = _fn("bpf_map__type", C.c_int, _vp)
map_btf_key_type_id = _fn("bpf_map__btf_key_type_id", C.c_uint32, _vp)
map_btf_value_type_id = _fn("bpf_map__btf_value_type_id", C.c_uint32, _vp)

map_create = _fn("bpf_map_create", C.c_int, C.c_int, C.c_char_p, C.c_uint32, C.c_uint32, C.c_uint32, _vp)
map_update_elem = _fn("bpf_map_update_elem", C.c_int, C.c_int, _vp, _vp, C.c_uint64)
map_lookup_elem = _fn("bpf_map_lookup_elem", C.c_int, C.c_int, _vp, _vp)
map_delete_elem = _fn("bpf_map_delete_elem", C.c_int, C.c_int, _vp)
map_get_next_key = _fn("bpf_map_get_next_key", C.c_int, C.c_int, _vp, _vp)
map_lookup_batch = _fn("bpf_map_lookup_batch", C.c_int, C.c_int, _vp, _vp, _vp, _vp, C.POINTER(C.c_uint32), _vp)
map_update_batch = _fn("bpf_map_update_batch", C.c_int, C.c_int, _vp, _vp, C.POINTER(C.c_uint32), _vp)


class MapCreateOpts(C.Structure):
    """struct bpf_map_create_opts (libbpf 1.x); `sz` says how much of it libbpf reads."""

    _fields_ = [("sz", C.c_size_t), ("btf_fd", C.c_uint32), ("btf_key_type_id", C.c_uint32),
                ("btf_value_type_id", C.c_uint32), ("btf_vmlinux_value_type_id", C.c_uint32),
                ("inner_map_fd", C.c_uint32), ("map_flags", C.c_uint32), ("map_extra", C.c_uint64),
                ("numa_node", C.c_uint32), ("map_ifindex", C.c_uint32)]


map_lookup_and_delete_batch = _fn("bpf_map_lookup_and_delete_batch", C.c_int, C.c_int, _vp, _vp, _vp, _vp,
                                  C.POINTER(C.c_uint32), _vp)

btf_parse = _fn("btf__parse", _vp, C.c_char_p, _vp)
btf_free = _fn("btf__free", None, _vp)
btf_type_cnt = _fn("btf__type_cnt", C.c_uint32, _vp)
btf_type_by_id = _fn("btf__type_by_id", _vp, _vp, C.c_uint32)
btf_name_by_offset = _fn("btf__name_by_offset", C.c_char_p, _vp, C.c_uint32)
btf_find_by_name_kind = _fn("btf__find_by_name_kind", C.c_int32, _vp, C.c_char_p, C.c_uint32)

num_possible_cpus = _fn("libbpf_num_possible_cpus", C.c_int)
libbpf_get_error = _fn("libbpf_get_error", C.c_long, _vp)



# libbpf reports through a printf-style callback; the va_list is handed to
# vsnprintf. On x86_64 and arm64 a va_list argument is passed as a pointer.
_PRINT_FN = C.CFUNCTYPE(C.c_int, C.c_int, C.c_char_p, _vp)
_libc.vsnprintf.argtypes = [C.c_char_p, C.c_size_t, C.c_char_p, _vp]
_libc.vsnprintf.restype = C.c_int

LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2


class LibbpfLog:
    """Collects libbpf's messages per thread, so errors can quote them."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._callback = _PRINT_FN(self._print)  # kept alive for libbpf
        _fn("libbpf_set_print", _vp, _PRINT_FN)(self._callback)

    def _print(self, level: int, fmt: bytes, args: int) -> int:
        if level > LIBBPF_INFO:
            return 0
        buf = C.create_string_buffer(16384)
        _libc.vsnprintf(buf, len(buf), fmt, args)
        lines = getattr(self._local, "lines", None)
        if lines is None:
            lines = self._local.lines = []
        lines.append(buf.value.decode(errors="replace"))
        del lines[:-2000]
        return 0

    def take(self) -> list[str]:
        """Return and forget what libbpf said in this thread."""
        lines = getattr(self._local, "lines", None) or []
        self._local.lines = []
        return "".join(lines).splitlines()


log = LibbpfLog()


def errno_message(default_errno: int | None = None) -> str:
    err = C.get_errno() or default_errno or 0
    return f"{os.strerror(err)} (errno {err})"
