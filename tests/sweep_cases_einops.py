"""einops on traced values (``pycograd.numpy_api.einops_backend``): each einops function in
every sweep mode. Empty when einops is not installed (it is a test dependency only)."""

from __future__ import annotations

from sweep_cases import A, Case, case

CASES: list[Case] = []

try:
    import einops
except ImportError:
    einops = None

if einops is not None:
    from einops import einsum, pack, rearrange, reduce, repeat, unpack

    def _ec(name: str, fn: object, args: list, prims: str, **kw: object) -> None:
        case(f"einops-{name}", fn, args, prims, table=CASES, **kw)

    _ec("rearrange-split", lambda x: rearrange(x, "b (h w) -> b h w", h=2), [A(3, 4)],
        "reshape")
    _ec("rearrange-permute-merge", lambda x: rearrange(x, "b h w -> (w b) h"), [A(2, 3, 4)],
        "transpose reshape")
    _ec("rearrange-ellipsis", lambda x: rearrange(x, "b ... c -> c b ..."), [A(2, 3, 2, 3)],
        "transpose")
    _ec("rearrange-list", lambda x, y: rearrange([x, y], "n b w -> b (n w)"),
        [A(2, 3), A(2, 3)], "transpose reshape")
    _INTS = {"eval_shape": "einops refuses reduce(..., 'mean') of integers, as on numpy "
             "arrays (test_einops checks eval_shape of float means, symbolic dims too)"}
    for _op, _prims in (("sum", "sum"), ("mean", "sum"), ("max", "max"), ("min", "min"),
                        ("prod", "prod")):
        _ec(f"reduce-{_op}", lambda x, op=_op: reduce(x, "b (h w) c -> b h c", op, w=2),
            [A(2, 4, 3, away=0.2) if _op == "prod" else A(2, 4, 3)], f"reshape {_prims}",
            skip=_INTS if _op == "mean" else {})
    _ec("reduce-to-scalar", lambda x: reduce(x, "b w ->", "sum"), [A(3, 2)], "sum")
    _ec("repeat-new-axis", lambda x: repeat(x, "b w -> b r w", r=3), [A(2, 3)],
        "broadcast_to")
    _ec("repeat-merge", lambda x: repeat(x, "h w -> (h r) (s w)", r=2, s=2), [A(2, 3)],
        "broadcast_to reshape")
    _ec("einsum-matmul", lambda x, y: einsum(x, y, "b i, i j -> b j"), [A(2, 3), A(3, 4)],
        "einsum")
    _ec("einsum-batch-trace", lambda x: einsum(x, "b i i -> b"), [A(2, 3, 3)], "einsum")
    _ec("pack", lambda x, y: pack([x, y], "b *")[0], [A(2, 3), A(2, 2, 2)],
        "reshape concatenate")
    _ec("unpack", lambda x: unpack(x, [(3,), (2, 2)], "b *"), [A(2, 7)], "getitem reshape")
    _ec("pack-unpack-roundtrip",
        lambda x, y: unpack(*pack([x, y], "b * c"), "b * c"), [A(2, 3, 2), A(2, 2, 2, 2)],
        "reshape concatenate getitem")
