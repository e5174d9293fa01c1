"""Every entry point of the library's operator table (linattn_ops(3)) as one
Python function, and the softmax step's KV cache."""
import ctypes
import inspect

from . import _array, _lib

IN, OUT, INOUT = 0, 1, 2
_OPT_TYPES = {0: "float", 1: "int", 2: "flag", 3: "algo", 4: "feature"}


class _TensorDesc:
    __slots__ = ("name", "dims", "tail", "role", "optional", "needs", "state")

    def __init__(self, d):
        self.name = d.name.decode()
        self.dims = d.dims.decode()
        self.tail = d.tail.decode() if d.tail not in (b"", b"\x00") else ""
        self.role, self.optional, self.needs = d.role, bool(d.optional), d.needs
        # a sequence state (over N) or a step's carried state
        self.state = self.dims.startswith("N") or self.role == INOUT


class Op:
    """One row of the operator table: name, entry, its tensors and options."""

    def __init__(self, ptr):
        info = ptr.contents
        self.ptr = ptr
        self.name = info.name.decode()
        self.entry = info.entry.decode()
        self.page = info.page.decode()
        self.packed, self.cache, self.f32_states = bool(info.packed), bool(info.cache), \
            bool(info.f32_states)
        self.tensors = [_TensorDesc(info.tensors[i]) for i in range(info.ntensors)]
        self.options = [(info.options[i].name.decode(), _OPT_TYPES[info.options[i].type],
                         info.options[i].def_) for i in range(info.noptions)]
        self.option_index = {n: i for i, (n, _, _) in enumerate(self.options)}
        self.inputs = [t for t in self.tensors if t.role != OUT]
        self.outputs = [t for t in self.tensors if t.role == OUT]
        # the final states output_final_state asks for (a shifted-state offset
        # such as ela's cT, which changes what sT means, only when named)
        self.finals = [t.name for t in self.outputs if t.optional and t.state and t.needs < 0]
        self.extras = [t.name for t in self.outputs if t.optional and t.name not in self.finals]

    def parse_option(self, name, value):
        i = self.option_index.get(name)
        if i is None:
            raise TypeError(f"{self.name}_{self.entry}: unexpected argument {name!r} "
                            f"(options: {', '.join(self.option_index) or 'none'})")
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        out = ctypes.c_double()
        _lib.check(_lib.lib().linattn_op_option_parse(self.ptr, i, text.encode(),
                                                      ctypes.byref(out)))
        return i, out.value


def call(op, inputs, options=None, want=(), cu_seqlens=None, cache=None, ctx=None):
    """Run op on inputs (a dict by table name); options by name; want: the
    optional outputs to return.  Returns the outputs, in table order, as a list."""
    h = _lib.lib()
    ctx = ctx or (cache.ctx if cache is not None else _lib.default_context())
    args = _lib.OpArgs()
    h.linattn_op_args_init(op.ptr, ctypes.byref(args))
    bound, kind, code = [], None, None
    for i, d in enumerate(op.tensors):
        if d.role == OUT:
            continue
        x = inputs.get(d.name)
        if x is None:
            if not d.optional:
                raise TypeError(f"{op.name}_{op.entry}: missing tensor {d.name!r}")
            continue
        b = _array.bind(x, d.name, inout=d.role == INOUT)
        args.t[i] = b.tensor
        bound.append(b)
        if kind is None and not d.state:
            kind, code = b.kind, b.dtype
    for name, value in (options or {}).items():
        j, v = op.parse_option(name, value)
        args.opt[j] = v
    seqs = None
    if cu_seqlens is not None:
        if not op.packed:
            raise TypeError(f"{op.name}_{op.entry} takes no cu_seqlens")
        seqs = _array.int64_array(cu_seqlens, "cu_seqlens")
        args.cu_seqlens = seqs.ctypes.data
        args.n_seqs = len(seqs) - 1
    if op.cache:
        if cache is None:
            raise TypeError(f"{op.name}_{op.entry}: needs a KVCache (cache=...)")
        args.cache = cache.handle
    dims = (ctypes.c_int64 * _lib.OP_LETTERS)()
    h.linattn_op_dims(op.ptr, ctypes.byref(args), dims)
    shape = (ctypes.c_int64 * _lib.MAX_DIMS)()
    outs = []
    for i, d in enumerate(op.tensors):
        if d.role != OUT or (d.optional and d.name not in want):
            continue
        _lib.check(h.linattn_op_shape(op.ptr, i, dims, shape))
        rank = h.linattn_op_rank(op.ptr, i, dims)
        oc = _lib.F32 if d.state else code
        arr = _array.empty(kind, shape[:rank], oc)
        args.t[i] = _array.bind_out(arr, oc)
        outs.append(arr)
    rc = h.linattn_op_call(ctx.handle, op.ptr, ctypes.byref(args))
    if rc:
        _lib.raise_for(rc)
    for b in bound:
        b.write_back()
    return outs


class KVCache(_lib.Handle):
    """The softmax step's KV cache (linattn_kvcache): keys [B,H,capacity,K]
    and values [B,H,capacity,V] held by the library in float32, on the
    context's device.  capacity is a hint (it doubles when an append needs
    room).  Closing its context closes it too."""

    def __init__(self, B, H, K, V, capacity=0, ctx=None):
        self.ctx = ctx or _lib.default_context()
        self._h = None
        p = ctypes.c_void_p()
        _lib.check(_lib.lib().linattn_kvcache_create(self.ctx.handle, B, H, K, V, capacity,
                                                     ctypes.byref(p)))
        self._h = p
        self.ctx._children.add(self)

    @property
    def handle(self):
        if self._h is None:
            raise ValueError("the KV cache is closed")
        return self._h

    def __len__(self):
        return int(_lib.lib().linattn_kvcache_length(self.handle))

    @property
    def capacity(self):
        """Tokens that fit before the next regrowth."""
        return int(_lib.lib().linattn_kvcache_capacity(self.handle))

    @property
    def nbytes(self):
        """Bytes of key and value storage held."""
        return int(_lib.lib().linattn_kvcache_bytes(self.handle))

    def append(self, k, v):
        """Append T tokens without attending (prefill): k [B,T,H,K], v [B,T,H,V]."""
        bk, bv = _array.bind(k, "k"), _array.bind(v, "v")
        _lib.check(_lib.lib().linattn_kvcache_append(self.ctx.handle, self.handle,
                                                     ctypes.byref(bk.tensor),
                                                     ctypes.byref(bv.tensor)))

    def reset(self):
        """Forget every token (keeps the memory)."""
        _lib.check(_lib.lib().linattn_kvcache_reset(self.handle))

    def truncate(self, length):
        """Keep the first `length` tokens."""
        _lib.check(_lib.lib().linattn_kvcache_truncate(self.handle, int(length)))

    def close(self):
        if self._h is not None:
            _lib.lib().linattn_kvcache_destroy(self._h)
            self._h = None


def _dims_text(d):
    return "[" + ",".join(d.dims) + (f"(,{d.tail})" if d.tail else "") + "]"


def make_function(op):
    """A Python function for one table row: inputs positional or by name,
    options and the optional outputs by keyword."""
    fname = f"{op.name}_{op.entry}"
    in_names = [d.name for d in op.inputs]

    def fn(*args, ctx=None, output_final_state=False, outputs=(), cu_seqlens=None,
           cache=None, **kw):
        if len(args) > len(in_names):
            raise TypeError(f"{fname}: at most {len(in_names)} positional tensors")
        inputs = dict(zip(in_names, args))
        options = {}
        for k, v in kw.items():
            if k in in_names:
                if k in inputs:
                    raise TypeError(f"{fname}: {k!r} given twice")
                inputs[k] = v
            elif v is not None:
                options[k] = v
        want = set(outputs)
        bad = want - set(op.extras) - set(op.finals)
        if bad:
            raise TypeError(f"{fname}: no optional output {sorted(bad)} "
                            f"(has {', '.join(op.finals + op.extras) or 'none'})")
        if output_final_state:
            want.update(op.finals)
        outs = call(op, inputs, options, want, cu_seqlens, cache, ctx)
        return outs[0] if len(outs) == 1 else tuple(outs)

    P = inspect.Parameter
    params, seen_optional = [], False
    for n, d in zip(in_names, op.inputs):
        seen_optional |= d.optional  # a required one after an optional one shows None
        params.append(P(n, P.POSITIONAL_OR_KEYWORD,
                        default=None if seen_optional else P.empty))
    params += [P(n, P.KEYWORD_ONLY, default=None) for n, _, _ in op.options]
    params += [P("ctx", P.KEYWORD_ONLY, default=None)]
    if op.finals:
        params += [P("output_final_state", P.KEYWORD_ONLY, default=False)]
    if op.extras or op.finals:
        params += [P("outputs", P.KEYWORD_ONLY, default=())]
    if op.packed:
        params += [P("cu_seqlens", P.KEYWORD_ONLY, default=None)]
    if op.cache:
        params += [P("cache", P.KEYWORD_ONLY, default=None)]
    fn.__signature__ = inspect.Signature(params)
    fn.__name__ = fn.__qualname__ = fname
    lines = [f"{op.name} {op.entry} ({op.page}) through the operator table.", "",
             "Tensors (NumPy arrays, torch CPU tensors or DLPack producers; f32, f16",
             "or bf16; any non-negative strides):"]
    for d in op.tensors:
        role = {IN: "input", OUT: "output", INOUT: "state, updated in place"}[d.role]
        opt = ", optional" if d.optional else ""
        lines.append(f"  {d.name} {_dims_text(d)}: {role}{opt}")
    if op.options:
        lines += ["", "Options (None or left out: the library's default):"]
        lines += [f"  {n} ({t}, default {dv:g})" for n, t, dv in op.options]
    lines += ["", "Returns the required outputs"]
    if op.finals:
        lines[-1] += (f", then with output_final_state=True the final state "
                      f"({', '.join(op.finals)})")
    if op.extras:
        lines[-1] += f"; outputs=(...) also asks for {', '.join(op.extras)}"
    lines += ["(in table order; a single output alone, several as a tuple).  Outputs",
              "take the inputs' kind (NumPy or torch) and dtype; states are float32.",
              "ctx: a linattn.Context (default: linattn.default_context())."]
    if op.packed:
        lines.append("cu_seqlens: N+1 offsets splitting a packed batch (B must be 1).")
    if op.cache:
        lines.append("cache: the linattn.KVCache to append to and attend over.")
    fn.__doc__ = "\n".join(lines)
    return fn


def table():
    """Every entry point of the operator table as an Op."""
    h = _lib.lib()
    return [Op(h.linattn_op_at(i)) for i in range(h.linattn_op_count())]


def find(name, entry):
    """The Op of an operator name and entry ("forward" or "step")."""
    p = _lib.lib().linattn_op_find(name.encode(), entry.encode())
    if not p:
        _lib.raise_for(-12)
    return Op(p)
