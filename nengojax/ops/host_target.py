"""The XLA:CPU target through which a compiled step calls Python.

JAX's own host callbacks (``io_callback``, ``buffer_callback``) put a pointer
to their Python function into the program, so JAX never writes a program that
uses one to its persistent compilation cache: a closed loop through Python
(a robot's sensor and motor Nodes) compiled again in every process. This
module registers one XLA FFI target, ``nengojax_host_call``, with a stable
name: the program names the Python function it calls by two int32 numbers
instead, a `HostTable` handle given at run time (an argument, the same in
every process's program) and the function's index in that table (a constant,
the same for the same network). Such programs are cached like any other.

The target is a typed XLA FFI handler (XLA's C API, ``xla/ffi/api/c_api.h``,
whose structs `ctypes` describes below) that runs the table's function with
NumPy views of the call's argument and result buffers. It only ever runs on a
CPU backend, whose buffers are host memory.
"""

from __future__ import annotations

import ctypes as C
import itertools
import threading
import weakref
from collections.abc import Callable

import jax
import numpy as np

__all__ = ["HANDLE_KEY", "TARGET", "HostTable", "call_target", "view"]

#: Name of the FFI target.
TARGET = "nengojax_host_call"

#: Key of a program's host table handle among the run's constants (``consts``).
HANDLE_KEY = "host_table_handle"


class _ExtensionBase(C.Structure):
    pass


_ExtensionBase._fields_ = [
    ("struct_size", C.c_size_t),
    ("type", C.c_int),
    ("next", C.POINTER(_ExtensionBase)),
]


class _ApiVersion(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("extension_start", C.c_void_p),
        ("major_version", C.c_int),
        ("minor_version", C.c_int),
    ]


class _Metadata(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("api_version", _ApiVersion),
        ("traits", C.c_uint32),
        ("state_type_id", C.c_int64),
    ]


class _MetadataExtension(C.Structure):
    _fields_ = [("extension_base", _ExtensionBase), ("metadata", C.POINTER(_Metadata))]


class _Buffers(C.Structure):  # XLA_FFI_Args and XLA_FFI_Rets
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("extension_start", C.c_void_p),
        ("size", C.c_int64),
        ("types", C.c_void_p),
        ("ptrs", C.POINTER(C.c_void_p)),
    ]


class _CallFrame(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("extension_start", C.POINTER(_ExtensionBase)),
        ("api", C.c_void_p),
        ("ctx", C.c_void_p),
        ("stage", C.c_int),
        ("args", _Buffers),
        ("rets", _Buffers),
        # then attrs and future: never read here, so not described
    ]


class _Buffer(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("extension_start", C.c_void_p),
        ("dtype", C.c_int),
        ("data", C.c_void_p),
        ("rank", C.c_int64),
        ("dims", C.POINTER(C.c_int64)),
    ]


class _ErrorCreateArgs(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("extension_start", C.c_void_p),
        ("message", C.c_char_p),
        ("errc", C.c_int),
    ]


_METADATA_EXTENSION = 1  # XLA_FFI_Extension_Metadata
_ERROR_UNKNOWN = 2  # XLA_FFI_Error_Code_UNKNOWN
# XLA_FFI_Api: struct_size, extension_start, api_version, internal_api, then
# the function pointers, XLA_FFI_Error_Create first
_ERROR_CREATE_OFFSET = 2 * C.sizeof(C.c_void_p) + C.sizeof(_ApiVersion) + C.sizeof(C.c_void_p)
_ErrorCreate = C.CFUNCTYPE(C.c_void_p, C.POINTER(_ErrorCreateArgs))
_Handler = C.CFUNCTYPE(C.c_void_p, C.POINTER(_CallFrame))

_tables: dict[int, weakref.ref] = {}
_handles = itertools.count(1)


class HostTable:
    """The Python functions one compiled network's programs call on the host.

    A function is added when a program calling it is first traced (`add`
    gives its index, a constant of the program); `handle` is given to the
    program at run time.
    The table lives as long as the network holding it: the target only keeps
    a weak reference.

    Attributes
    ----------
    handle : int
        The table's number in this process (int32).
    """

    def __init__(self):
        self.handle = next(_handles)
        self._calls: list[Callable] = []
        _tables[self.handle] = weakref.ref(self)
        weakref.finalize(self, _tables.pop, self.handle, None)

    def add(self, call: Callable) -> int:
        """Add ``call(args, rets)``, which gets the addresses of the call's
        argument and result buffers (host memory; see `view`) and writes its
        results in place. Returns its index."""
        self._calls.append(call)
        return len(self._calls) - 1

    def __getitem__(self, index: int) -> Callable:
        return self._calls[index]


def view(address: int, nbytes: int) -> np.ndarray:
    """The ``nbytes`` bytes at ``address`` (an XLA buffer), as a writable uint8
    array (no copy: valid during the call only)."""
    if nbytes == 0:
        return np.zeros(0, np.uint8)
    return np.frombuffer((C.c_char * nbytes).from_address(address), np.uint8)


def _error(frame: _CallFrame, message: str) -> int:
    """A new ``XLA_FFI_Error`` (XLA fails the run with ``message``)."""
    create = _ErrorCreate(C.c_void_p.from_address(frame.api + _ERROR_CREATE_OFFSET).value)
    args = _ErrorCreateArgs(C.sizeof(_ErrorCreateArgs), None, message.encode(), _ERROR_UNKNOWN)
    return create(C.byref(args))


def _handle(frame_ptr):
    # runs on XLA's thread, for every call; ctypes holds the GIL meanwhile and
    # would swallow an exception, so every failure becomes an XLA error
    frame = frame_ptr.contents
    try:
        extension = frame.extension_start
        if extension and extension.contents.type == _METADATA_EXTENSION:
            # XLA asks which FFI version the handler was written against
            metadata = C.cast(extension, C.POINTER(_MetadataExtension)).contents.metadata.contents
            metadata.api_version.major_version = 0
            metadata.api_version.minor_version = 1
            metadata.traits = 0
            return None
        args = [_Buffer.from_address(frame.args.ptrs[i]).data for i in range(frame.args.size)]
        rets = [_Buffer.from_address(frame.rets.ptrs[i]).data for i in range(frame.rets.size)]
        handle, index = (C.c_int32 * 2).from_address(args[0])
        table = _tables.get(handle)
        table = table() if table is not None else None
        if table is None:
            return _error(frame, f"{TARGET}: no host table {handle} (its network is gone)")
        table[index](args[1:], rets)
        return None
    except BaseException as e:  # noqa: BLE001  (the caller holds the user's exception)
        return _error(frame, f"{TARGET}: {type(e).__name__}: {e}")


_handler = _Handler(_handle)  # kept alive for as long as XLA may call it
_registered: list = []
_lock = threading.Lock()


def _register() -> None:
    with _lock:
        if _registered:
            return
        # a prototype of our own: ctypes.pythonapi's functions are shared
        new_capsule = C.PYFUNCTYPE(C.py_object, C.c_void_p, C.c_char_p, C.c_void_p)(
            ("PyCapsule_New", C.pythonapi)
        )
        address = C.cast(_handler, C.c_void_p).value
        capsule = new_capsule(address, b"xla._CUSTOM_CALL_TARGET", None)
        jax.ffi.register_ffi_target(TARGET, capsule, platform="cpu")
        _registered.append(True)


def call_target(result_shapes, ids, *args):
    """Call the target: ``ids`` is ``int32[2]`` (table handle, index), ``args``
    the arrays the table's function reads; returns its results (a list)."""
    _register()
    call = jax.ffi.ffi_call(
        TARGET, tuple(result_shapes), has_side_effect=True, vmap_method="sequential"
    )
    return call(ids, *args)
