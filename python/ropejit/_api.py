"""The ops over the C API: arguments read (torch and numpy directly, anything else through DLPack),
the table found, one C call, errors raised as ropejit.Error. torch tensors take a fast path
(torch_call) that packs a call's arguments once per shape and reuses them."""
import ctypes
import struct
import threading

from . import _dlpack as D
from . import _library as L
from . import _tables as T

STYLES = {"neox": 0, "gptj": 1}


def _empty_like(name, x):
    """An uninitialised tensor like x, of x's own library and device."""
    if isinstance(x, D.Tensor):
        return D.torch.empty_like(x)
    if isinstance(x, D.ndarray):
        return D.numpy.empty_like(x)
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__().empty_like(x)
    raise L.Error("%s: cannot allocate an output like a %s; pass out=(q_out, k_out)" % (name, type(x).__name__))


def _immutable(x):
    return type(x).__module__.split(".")[0] in ("jax", "jaxlib")


def _needed_positions(positions, seq, dev_type):
    """(offset, ids, the number of table positions the call needs) for positions None, an int offset,
    or ids. Ids on the GPU are not read here (that would wait for the GPU): 0."""
    if positions is None:
        return 0, None, seq
    if isinstance(positions, int) and not isinstance(positions, bool):
        return positions, None, positions + seq
    if D.numpy is not None and isinstance(positions, D.numpy.integer):
        return int(positions), None, int(positions) + seq
    if dev_type == D.KDL_CPU and (isinstance(positions, D.Tensor) or isinstance(positions, D.ndarray)):
        n = positions.numel() if isinstance(positions, D.Tensor) else positions.size
        return 0, positions, (int(positions.max()) + 1 if n else 0)
    return 0, positions, 0


def _stream_of(stream, q, dev_type, dev_id):
    if dev_type != D.KDL_CUDA:
        return None
    if stream is None:
        if isinstance(q, D.Tensor):
            return D.torch_stream(dev_id)
        return None  # the legacy default stream
    if isinstance(stream, int):
        return stream
    for attr in ("cuda_stream", "ptr", "handle"):  # torch, cupy, others
        if hasattr(stream, attr):
            return int(getattr(stream, attr))
    raise L.Error("stream: %r is neither a CUstream handle (int) nor a stream object" % (stream,))


def run(op, q, k, positions, theta, rotary_dim, style, inplace, out, stream, max_position, table, table_dtype,
        q_weight=None, k_weight=None, eps=1e-6, one_plus_weight=False, warm_up=False, layout=D.DEFAULT_LAYOUT):
    """One call of `op` (rope, rope_backward or qk_norm_rope); returns (q', k'). layout: (rotary_offset,
    mrope_section, mrope_interleaved)."""
    style_code = STYLES.get(style)
    if style_code is None:
        raise L.Error("style %r is not supported: use 'neox' or 'gptj'" % (style,))
    dev_type, dev_id = D.device_of(q)
    shape = q.shape
    if len(shape) not in (3, 4):
        raise L.Error("q: %d dimensions; expected [tokens, heads, head_dim] or [batch, seq, heads, head_dim]"
                      % len(shape))
    offset, ids, needed = _needed_positions(positions, shape[0] if len(shape) == 3 else shape[1], dev_type)
    if max_position:
        needed = max(needed, max_position)
    if table is not None:
        rot = rotary_dim or table.rotary_dim
        handle = table.handle
    else:
        rot = rotary_dim or shape[-1] - layout[0]
        handle = T.table_for(dev_type, dev_id, theta, rot, table_dtype, needed)
    if out is not None:
        q_out, k_out = out
        if q_out is None or (k is not None and k_out is None):
            raise L.Error("out: give (q_out, k_out) for q and k, or (q_out, None) for q alone")
    elif inplace or warm_up:
        q_out = k_out = None
        if _immutable(q) and not warm_up:
            raise L.Error("q: %s arrays are immutable: use inplace=False" % type(q).__module__.split(".")[0])
    else:
        q_out = _empty_like("q", q)
        k_out = None if k is None else _empty_like("k", k)
    s = _stream_of(stream, q, dev_type, dev_id)
    in_place = q_out is None
    try:
        args = (D.pack(D.Q, q, s, in_place), D.pack(D.K, k, s, in_place), D.pack(D.Q_OUT, q_out, s, True),
                D.pack(D.K_OUT, k_out, s, True), D.pack(D.POS, ids, s))
        opt = D.options(style_code, rot, offset, eps, one_plus_weight, layout)
        if op is L.qk_norm_rope or op is L.qk_norm_rope_warm_up:
            w = (D.pack(D.Q_W, q_weight, s), D.pack(D.K_W, k_weight, s))
            status = op(*args[:4], *w, args[4], handle, opt) if warm_up else op(*args[:4], *w, args[4], handle, opt, s)
        elif warm_up:
            status = L.rope_warm_up(*args, handle, opt, 1 if op is L.rope_backward else 0)
        else:
            status = op(*args, handle, opt, s)
    finally:
        if D.buffers.keep:
            D.buffers.keep.clear()
    if status:
        L.fail(status)
    if in_place:
        return q, k
    return q_out, k_out


# ---------------------------------------------------------------------------------------------
# The torch fast path. A call is prepared once per key (the op, its options, each tensor's dtype,
# device, shape and strides, and the pointers' alignment: all the C side's prepared call fixes) into a
# ropejit_prepared handle; a later call with the same key writes only its data pointers and position
# offset into the handle's ropejit_data and launches it: three arguments through ctypes. Each launch
# still checks what its data can change (alignment, overlap by elements, the offset's range).

_MAX_PREPARED = 256  # per thread; past it the cache starts over (shapes that never repeat)
_stream = D.torch_stream
_bump = D.torch_bump_versions
_launch = L.prepared_launch
_DATA = struct.Struct("<QQQQQq")  # ropejit_data: q, k, q_out, k_out, positions, position_offset
_SLOT_DATA = struct.Struct("<Q")  # a DLTensor's data pointer, the first field of its slot


class _Prepared:
    """One key's C prepared call and its ropejit_data buffer (words: q, k, q_out, k_out, positions,
    position_offset)."""
    __slots__ = ("handle", "data", "words", "address", "raw", "args", "prepare", "table", "size", "seq", "cuda",
                 "device", "host_ids", "__weakref__")

    def __init__(self):
        self.handle = None

    def __del__(self):
        if self.handle:
            try:
                L.prepared_destroy(self.handle)
            except Exception:  # noqa: BLE001 - at interpreter exit the library may be gone
                pass
            self.handle = None


class _PerThread(threading.local):
    def __init__(self):
        self.prepared = {}  # key -> _Prepared: each thread writes its own data buffers


_local = _PerThread()


def _meta(t):
    """The key's part for an optional tensor: () for None, None where the fast path does not take t
    (not a plain torch tensor)."""
    if t is None:
        return ()
    if type(t) is not D.Tensor:
        return None
    return t.dtype, t.device, t.shape, t.stride()


def _make_handle(c, need, pointers=None):
    """Prepares c's C call with a table covering positions [0, need) (the same rows in a larger
    table when it grows; the old handle is freed, launches already queued are unaffected).
    `pointers` (slot -> data pointer): this call's data, written into the DLTensors first, since
    preparing reads host ids and checks the pointers."""
    for index, ptr in (pointers or {}).items():
        _SLOT_DATA.pack_into(c.raw, D.SLOT * index, ptr)
    table, size = T.entry_for(*c.table, need)
    args = list(c.args)
    args[-2] = table
    args = tuple(args)
    handle = ctypes.c_void_p()
    status = c.prepare(*args, ctypes.byref(handle))
    if status:
        L.fail(status)
    if c.handle:
        L.prepared_destroy(c.handle)
    c.handle, c.args, c.size = handle.value, args, size


def _pointers(q, k, q_out, k_out, ids):
    """This call's data pointers by slot, for a prepared call made again."""
    out = {D.Q: q.data_ptr()}
    for index, t in ((D.K, k), (D.Q_OUT, q_out), (D.K_OUT, k_out), (D.POS, ids)):
        if t is not None:
            out[index] = t.data_ptr()
    return out


def _prepare(op, tensors, config):
    """The _Prepared of a call, or None for a call the fast path leaves to run() (a device, dtype or
    rank it does not take, a style it does not know: run() reports those). Raises ropejit.Error for
    a call the C side refuses."""
    theta, rotary_dim, style, max_position, table_dtype = config[:5]
    eps, one_plus_weight = config[5:7] or (1e-6, False)
    layout = config[7] if len(config) > 7 else D.DEFAULT_LAYOUT
    q = tensors[D.Q]
    style_code = STYLES.get(style)
    if style_code is None or q.dim() not in (3, 4):
        return None
    c = _Prepared()
    c.raw, _ = D.new_buffer()
    addrs = []
    for index, t in enumerate(tensors):
        if t is None:
            addrs.append(None)
            continue
        code = D.TORCH_DTYPES.get(t.dtype)
        if code is None or t.dim() > 4 or not (t.is_cuda or t.device.type == "cpu"):
            return None
        dev_type, dev_id = D.torch_device(t)
        addrs.append(D.fill(c.raw, index, t.data_ptr(), dev_type, dev_id, code[0], code[1], t.shape, t.stride()))
    c.cuda = q.is_cuda
    c.device = q.get_device() if c.cuda else 0
    c.seq = q.shape[0] if q.dim() == 3 else q.shape[1]
    rot = rotary_dim or q.shape[-1] - layout[0]
    ids = tensors[D.POS]
    # Ids on the host are read for the table they need (their max), each call; on the GPU they are
    # not read (max_position, else the default size, covers them).
    c.host_ids = ids is not None and not ids.is_cuda and ids.numel() > 0
    options = D.options_into(c.raw, style_code, rot, 0, eps, one_plus_weight, layout)
    if op is L.qk_norm_rope:
        c.args = tuple(addrs[:4] + addrs[D.Q_W:] + [addrs[D.POS], None, options])
        c.prepare = L.qk_norm_rope_prepare
    else:
        c.args = tuple(addrs[:5] + [None, options])
        backward = 1 if op is L.rope_backward else 0
        c.prepare = lambda *a: L.rope_prepare(*a[:-1], backward, a[-1])
    c.table = (D.KDL_CUDA if c.cuda else D.KDL_CPU, c.device, theta, rot, table_dtype)
    need = max_position or 0
    if ids is None:
        need = max(need, c.seq)  # the first call's offset is checked (and grown for) at its launch
    elif c.host_ids:
        need = max(need, int(ids.max()) + 1)  # preparing checks the first call's ids
    _make_handle(c, need)
    c.data = ctypes.create_string_buffer(_DATA.size)
    c.address = ctypes.addressof(c.data)
    c.words = memoryview(c.data).cast("B").cast("q")
    return c


def torch_call(op, q, k, positions, config, out=None, q_weight=None, k_weight=None):
    """op (rope, rope_backward or qk_norm_rope) on plain torch tensors with ropejit's table, on the
    current stream: in place, or into out=(q_out, k_out). config: (theta, rotary_dim, style,
    max_position, table_dtype), plus (eps, one_plus_weight) for qk_norm_rope. Returns (q', k'), or
    None for a call that run() must take (nothing done)."""
    # The key, read inline (this is the hot path): for each tensor its dtype, device, shape, strides,
    # and the low bits of the data pointers (the prepared kernel's vector width depends on them).
    # Subclasses (which may redefine what these read) take run().
    if type(q) is not D.Tensor:
        return None
    qp = q.data_ptr()
    if k is None:
        km, kp = None, 0
    elif type(k) is D.Tensor:
        kp = k.data_ptr()
        km = (k.dtype, k.device, k.shape, k.stride())
    else:
        return None
    if positions is None:
        offset, ids, pm = 0, None, None
    elif type(positions) is int:
        offset, ids, pm = positions, None, None
    elif type(positions) is D.Tensor:
        offset, ids, pm = 0, positions, (positions.dtype, positions.device, positions.shape, positions.stride())
    else:
        return None
    if out is None and q_weight is None:
        q_out = k_out = None
        key = (id(op), config, q.dtype, q.device, q.shape, q.stride(), km, pm, (qp | kp) & 15)
    else:
        q_out, k_out = out if out is not None else (None, None)
        if out is not None and (q_out is None or (k is None) != (k_out is None)):
            return None  # run() says what is wrong
        extra = (_meta(q_out), _meta(k_out), _meta(q_weight), _meta(k_weight))
        if None in extra:
            return None
        bits = qp | kp | (q_out.data_ptr() if q_out is not None else 0) | (k_out.data_ptr() if k_out is not None else 0)
        # The norm's weights are fixed by the prepared call: their addresses are part of the key (one
        # entry per layer's weights).
        weights = (q_weight.data_ptr() if q_weight is not None else 0, k_weight.data_ptr() if k_weight is not None else 0)
        key = (id(op), config, q.dtype, q.device, q.shape, q.stride(), km, pm, extra, bits & 15, weights)
    prepared = _local.prepared
    c = prepared.get(key)
    if c is None:
        c = _prepare(op, (q, k, q_out, k_out, ids, q_weight, k_weight), config)
        if c is None:
            return None
        if len(prepared) >= _MAX_PREPARED:
            prepared.clear()
        prepared[key] = c
    if ids is None:
        if offset + c.seq > c.size:
            _make_handle(c, offset + c.seq, _pointers(q, k, q_out, k_out, None))
    elif c.host_ids:
        need = int(ids.max()) + 1
        if need > c.size:
            _make_handle(c, need, _pointers(q, k, q_out, k_out, ids))
    w = c.words
    w[0] = qp
    w[1] = kp
    if ids is None:
        w[4] = 0
        w[5] = offset
    else:
        w[4] = ids.data_ptr()
    if q_out is not None:
        w[2] = q_out.data_ptr()
        w[3] = k_out.data_ptr() if k_out is not None else 0
    status = _launch(c.handle, c.address, _stream(c.device) if c.cuda else None)
    if status:
        L.fail(status)
    if q_out is None:
        q_out, k_out = q, k
    if _bump is not None:
        _bump(q_out, k_out)
    return q_out, k_out


def call(op, q, k, positions, config, inplace=True, out=None, q_weight=None, k_weight=None):
    """torch_call where it takes the call, else run(); torch's current stream, ropejit's table."""
    if not inplace and out is None and type(q) is D.Tensor and (k is None or type(k) is D.Tensor):
        out = (D.torch.empty_like(q), None if k is None else D.torch.empty_like(k))
    r = torch_call(op, q, k, positions, config, out, q_weight, k_weight)
    if r is not None:
        return r
    theta, rotary_dim, style, max_position, table_dtype = config[:5]
    eps, one_plus_weight = config[5:7] or (1e-6, False)
    layout = config[7] if len(config) > 7 else D.DEFAULT_LAYOUT
    return run(op, q, k, positions, theta, rotary_dim, style, inplace, out, None, max_position, None, table_dtype,
               q_weight, k_weight, eps, one_plus_weight, layout=layout)
