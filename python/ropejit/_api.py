"""The ops over the C API: arguments read (torch and numpy directly, anything else through DLPack),
the table found, one C call, errors raised as ropejit.Error."""
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
        q_weight=None, k_weight=None, eps=1e-6, one_plus_weight=False, warm_up=False):
    """One call of `op` (rope, rope_backward or qk_norm_rope); returns (q', k')."""
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
        rot = rotary_dim or shape[-1]
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
        opt = D.options(style_code, rot, offset, eps, one_plus_weight)
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


def fast_torch(op, q, k, positions, theta, rotary_dim, style, max_position, table_dtype):
    """run() for the common torch call, in place on the current stream with ropejit's table: the same
    checks and C call with as little Python as possible. None where the call is not that case (the
    caller then takes run())."""
    T_ = D.TORCH_DTYPES
    if q.is_cuda:
        dev_type, dev_id = D.KDL_CUDA, q.get_device()
    elif (positions is None or type(positions) is int) and q.device.type == "cpu":  # host ids: run() reads them
        dev_type, dev_id = D.KDL_CPU, 0
    else:
        return None
    shape = q.shape
    n = len(shape)
    if n == 3:
        seq = shape[0]
    elif n == 4:
        seq = shape[1]
    else:
        return None
    ids = None
    if positions is None:
        offset, need = 0, seq
    elif type(positions) is int:
        offset, need = positions, positions + seq
    elif isinstance(positions, D.Tensor):
        offset, need, ids = 0, max_position or 0, positions
    else:
        return None
    style_code = STYLES.get(style)
    qt = T_.get(q.dtype)
    if style_code is None or qt is None:
        return None
    rot = rotary_dim or shape[-1]
    entry = T._tables.get((dev_type, dev_id, theta, rot, table_dtype))
    handle = entry[0] if entry is not None and entry[1] >= need else T.table_for(dev_type, dev_id, theta, rot,
                                                                                   table_dtype, need)
    b = D.buffers
    raw, slots, pack = b.raw, b.slots, D._PACK
    a = slots[D.Q]
    pack[n].pack_into(raw, 0, q.data_ptr(), dev_type, dev_id, n, qt[0], qt[1], 1, a + 48, a + 80, 0, *shape,
                      *q.stride())
    kp = pp = None
    if k is not None:
        kt = T_.get(k.dtype)
        if kt is None or not isinstance(k, D.Tensor):
            return None
        kp = slots[D.K]
        ks = k.shape
        kd = (D.KDL_CUDA, k.get_device()) if k.is_cuda else D.torch_device(k)
        pack[len(ks)].pack_into(raw, D.SLOT * D.K, k.data_ptr(), kd[0], kd[1], len(ks), kt[0], kt[1], 1, kp + 48,
                                kp + 80, 0, *ks, *k.stride())
    if ids is not None:
        pt = T_.get(ids.dtype)
        if pt is None:
            return None
        pp = slots[D.POS]
        ps = ids.shape
        pd = (D.KDL_CUDA, ids.get_device()) if ids.is_cuda else D.torch_device(ids)
        pack[len(ps)].pack_into(raw, D.SLOT * D.POS, ids.data_ptr(), pd[0], pd[1], len(ps), pt[0], pt[1], 1,
                                pp + 48, pp + 80, 0, *ps, *ids.stride())
    opt = (style_code, rot, offset)
    if b.last_options != opt:
        D.options(style_code, rot, offset)
        b.last_options = opt
    status = op(a, kp, None, None, pp, handle, b.options, D.torch_stream(dev_id) if dev_type == D.KDL_CUDA else None)
    if status:
        L.fail(status)
    return q, k
