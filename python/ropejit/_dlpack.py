"""Arguments as the C API wants them: DLTensors and ropejit_options packed into reusable per-thread
buffers. torch and numpy arrays are read directly (data pointer, shape, strides, dtype: no capsule);
anything else exporting ``__dlpack__`` goes through its capsule, which is kept alive for the call."""
import ctypes
import struct
import threading

from . import _library as L

KDL_CPU, KDL_CUDA = 1, 2
KDL_INT, KDL_FLOAT, KDL_BFLOAT = 0, 2, 4

# DLTensor (48 bytes: data, device type and id, ndim, dtype code/bits/lanes, shape*, strides*,
# byte_offset), then its shape[4] and strides[4]: one slot of 112 bytes.
SLOT = 112
_HEAD = "<QiiiBBHQQQ"
_PACK = {n: struct.Struct(_HEAD + "%dq%dx%dq" % (n, 8 * (4 - n), n)) for n in range(0, 5)}
# ropejit_options: struct_size, style, rotary_dim, position_offset, eps, one_plus_weight, threads,
# vector_width, unroll, streaming, then (C API 2) rotary_offset, mrope_section[3], mrope_interleaved
# (80 bytes).
OPTIONS_SIZE = 80
_OPTIONS = struct.Struct("<Iiqqdiiiii4xq3ii")
# The layout options past the rotary_dim: (rotary_offset, mrope_section, mrope_interleaved).
DEFAULT_LAYOUT = (0, (0, 0, 0), False)

# Slots: q, k, q_out, k_out, positions, q_weight, k_weight; then the options.
Q, K, Q_OUT, K_OUT, POS, Q_W, K_W = range(7)
NSLOTS = 7
OPTIONS_AT = SLOT * NSLOTS
BUFFER_SIZE = OPTIONS_AT + OPTIONS_SIZE


def new_buffer():
    """A buffer of NSLOTS DLTensor slots and the options, and its address."""
    raw = ctypes.create_string_buffer(BUFFER_SIZE)
    return raw, ctypes.addressof(raw)


class _Buffers(threading.local):
    def __init__(self):
        self.raw, base = new_buffer()
        self.slots = [base + SLOT * i for i in range(NSLOTS)]
        self.options = base + OPTIONS_AT
        self.keep = []  # capsules of the current call


buffers = _Buffers()

try:
    import torch

    TORCH_DTYPES = {torch.float32: (KDL_FLOAT, 32), torch.float16: (KDL_FLOAT, 16),
                    torch.bfloat16: (KDL_BFLOAT, 16), torch.int32: (KDL_INT, 32), torch.int64: (KDL_INT, 64),
                    torch.float64: (KDL_FLOAT, 64)}
    Tensor = torch.Tensor
    # torch's current stream on a device, as a CUstream handle (int): the raw getter where torch has it.
    _raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    torch_stream = _raw_stream or (lambda device: torch.cuda.current_stream(device).cuda_stream)
except ImportError:  # torch is optional
    torch = None
    Tensor = ()
    TORCH_DTYPES = {}
    torch_stream = None


def _version_bumper():
    """bump(a, b): marks torch tensors a and b (b may be None) as written in place, as torch's own
    in-place ops do, so that autograd refuses a backward whose saved values were overwritten. None
    where torch has no way to (1.13)."""
    inc = getattr(torch._C, "_increment_version", None) if torch is not None else None
    if inc is None:
        return None
    try:
        inc(())  # newer torch takes an iterable of tensors, older torch a tensor (and refuses this)
        one = lambda t: inc((t,))  # noqa: E731
    except Exception:  # noqa: BLE001 - whatever the older signature raises
        one = inc

    def each(a, b):
        for t in (a, b):
            if t is not None:
                try:
                    one(t)
                except RuntimeError:  # an inference tensor outside inference mode has no version counter
                    pass

    if one is inc:
        return each

    def bump(a, b):
        try:
            inc((a,) if b is None else (a, b))
        except RuntimeError:
            each(a, b)

    return bump


torch_bump_versions = _version_bumper()

try:
    import numpy

    ndarray = numpy.ndarray
    _NUMPY_DTYPES = {"float32": (KDL_FLOAT, 32), "float16": (KDL_FLOAT, 16), "bfloat16": (KDL_BFLOAT, 16),
                     "int32": (KDL_INT, 32), "int64": (KDL_INT, 64), "float64": (KDL_FLOAT, 64)}
except ImportError:
    numpy = None
    ndarray = ()


def fill(raw, index, ptr, dev_type, dev_id, code, bits, shape, strides):
    """Packs the DLTensor of slot `index` of raw (a new_buffer()); returns the slot's address."""
    n = len(shape)
    if n > 4:
        raise L.Error("%s: %d dimensions; ropejit takes at most 4" % (NAMES[index], n))
    addr = ctypes.addressof(raw) + SLOT * index
    _PACK[n].pack_into(raw, SLOT * index, ptr, dev_type, dev_id, n, code, bits, 1, addr + 48, addr + 80, 0, *shape,
                       *strides)
    return addr


def _fill(index, ptr, dev_type, dev_id, code, bits, shape, strides):
    return fill(buffers.raw, index, ptr, dev_type, dev_id, code, bits, shape, strides)


NAMES = ("q", "k", "q_out", "k_out", "positions", "q_weight", "k_weight")


def torch_device(t):
    """(DLPack device type, id) of a torch tensor."""
    if t.is_cuda:
        return KDL_CUDA, t.get_device()
    if t.device.type == "cpu":
        return KDL_CPU, 0
    raise L.Error("%s tensors are not supported: ropejit runs on cpu and cuda tensors" % t.device.type)


def pack_torch(index, t):
    try:
        code, bits = TORCH_DTYPES[t.dtype]
    except KeyError:
        raise L.Error("%s: dtype %s is not supported" % (NAMES[index], t.dtype)) from None
    dev_type, dev_id = (KDL_CUDA, t.get_device()) if t.is_cuda else torch_device(t)
    return _fill(index, t.data_ptr(), dev_type, dev_id, code, bits, t.shape, t.stride())


def pack_numpy(index, a, writes=False):
    try:
        code, bits = _NUMPY_DTYPES[a.dtype.name]
    except KeyError:
        raise L.Error("%s: dtype %s is not supported" % (NAMES[index], a.dtype)) from None
    size = a.itemsize
    if any(s % size for s in a.strides):
        raise L.Error("%s: strides %s are not whole elements" % (NAMES[index], a.strides))
    if writes and not a.flags.writeable:
        raise L.Error("%s: the array is read-only" % NAMES[index])
    return _fill(index, a.__array_interface__["data"][0], KDL_CPU, 0, code, bits, a.shape,
                 [s // size for s in a.strides])


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def pack_dlpack(index, x, stream):
    """A DLTensor* from x.__dlpack__(): the capsule's DLManagedTensor starts with its DLTensor."""
    if not hasattr(x, "__dlpack__"):
        raise L.Error("%s: %s is not a tensor: it has no __dlpack__" % (NAMES[index], type(x).__name__))
    dev_type, _ = x.__dlpack_device__()
    capsule = x.__dlpack__(stream=(stream or 1)) if dev_type == KDL_CUDA else x.__dlpack__()
    buffers.keep.append(capsule)
    return _capsule_pointer(capsule, b"dltensor")


def pack(index, x, stream=0, writes=False):
    """The DLTensor* of x (None stays None); `writes`: ropejit will write x."""
    if x is None:
        return None
    if isinstance(x, Tensor):
        return pack_torch(index, x)
    if isinstance(x, ndarray):
        return pack_numpy(index, x, writes)
    return pack_dlpack(index, x, stream)


def options_into(raw, style, rotary_dim, offset, eps=1e-6, one_plus_weight=False, layout=DEFAULT_LAYOUT):
    """Packs the options of raw (a new_buffer()); returns their address."""
    rotary_offset, mrope, interleaved = layout
    _OPTIONS.pack_into(raw, OPTIONS_AT, OPTIONS_SIZE, style, rotary_dim, offset, eps, 1 if one_plus_weight else 0, 0, 0,
                       0, -1, rotary_offset, *mrope, 1 if interleaved else 0)
    return ctypes.addressof(raw) + OPTIONS_AT


def options(style, rotary_dim, offset, eps=1e-6, one_plus_weight=False, layout=DEFAULT_LAYOUT):
    return options_into(buffers.raw, style, rotary_dim, offset, eps, one_plus_weight, layout)


def device_of(x):
    """(DLPack device type, id) of any supported tensor."""
    if isinstance(x, Tensor):
        return torch_device(x)
    if isinstance(x, ndarray):
        return KDL_CPU, 0
    if hasattr(x, "__dlpack_device__"):
        t, i = x.__dlpack_device__()
        return int(t), int(i)
    raise L.Error("%s is not a tensor: it has no __dlpack__" % type(x).__name__)
