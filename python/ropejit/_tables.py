"""cos/sin tables, built once per (device, theta, rotary_dim, dtype) and kept: a call that needs more
positions gets a larger table. Replaced tables are kept alive too, since queued kernels and captured
CUDA graphs may still read them (the sizes double, so at most twice the largest is held)."""
import ctypes
import threading

from . import _library as L

DEFAULT_POSITIONS = 8192  # the smallest table built, and the size assumed for ids read only on the GPU

_tables = {}   # key -> (handle, max_position)
_retired = []  # handles still possibly in use
_lock = threading.Lock()

_DTYPES = {"float32": (2, 32), "bfloat16": (4, 16)}
_ANGLES = {"exact": 1, "hf_compat": 2}  # angles= (ropejit_frequencies_create's modes)


class Table:
    """Your own cos/sin, each [max_position, rotary_dim / 2] float32 or bfloat16 with contiguous rows,
    on the device of the tensors it will rotate (e.g. a model's own, scaled, frequencies). Pass it as
    ``table=``; cos and sin are borrowed (kept referenced here, never copied)."""

    def __init__(self, cos, sin):
        from . import _dlpack as D

        self.cos, self.sin = cos, sin
        handle = ctypes.c_void_p()
        try:
            status = L.table_wrap(D.pack(0, cos), D.pack(1, sin), ctypes.byref(handle))
        finally:
            D.buffers.keep.clear()
        if status:
            L.fail(status)
        self.handle = handle.value
        mp, rd = ctypes.c_int64(), ctypes.c_int64()
        L.table_shape(self.handle, ctypes.byref(mp), ctypes.byref(rd))
        self.max_position, self.rotary_dim = mp.value, rd.value

    def __del__(self):
        if getattr(self, "handle", None):
            L.table_destroy(self.handle)
            self.handle = None


def table_for(dev_type, dev_id, theta, rotary_dim, dtype, positions_needed):
    """The handle of a table covering positions [0, positions_needed)."""
    return entry_for(dev_type, dev_id, theta, rotary_dim, dtype, positions_needed)[0]


def entry_for(dev_type, dev_id, theta, rotary_dim, dtype, positions_needed):
    """(handle, max_position) of a table covering positions [0, positions_needed)."""
    key = (dev_type, dev_id, theta, rotary_dim, dtype)
    entry = _tables.get(key)
    if entry is not None and entry[1] >= positions_needed:
        return entry
    with _lock:
        entry = _tables.get(key)
        if entry is not None and entry[1] >= positions_needed:
            return entry
        size = max(DEFAULT_POSITIONS, entry[1] if entry else 0)
        while size < positions_needed:
            size *= 2
        handle = ctypes.c_void_p()
        if dtype in _ANGLES:  # no table: cos and sin computed in the kernel, any position up to 2^32
            status = L.frequencies_create(L.DLDevice(dev_type, dev_id), rotary_dim, float(theta), _ANGLES[dtype],
                                          ctypes.byref(handle))
            if status:
                L.fail(status)
            mp = ctypes.c_int64()
            L.table_shape(handle.value, ctypes.byref(mp), None)
            size = mp.value
        else:
            if dtype not in _DTYPES:
                raise L.Error("table_dtype %r is not supported: use 'float32' or 'bfloat16'" % (dtype,))
            status = L.table_create(L.DLDevice(dev_type, dev_id), size, rotary_dim, float(theta),
                                    L.DLDataType(*_DTYPES[dtype], 1), ctypes.byref(handle))
            if status:
                L.fail(status)
        if entry is not None:
            _retired.append(entry[0])
        entry = _tables[key] = (handle.value, size)
        return entry
