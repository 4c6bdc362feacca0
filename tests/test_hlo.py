"""The kernel-budget parser of benchmarks/hlo.py counts a scan's loop body right."""

import os
import sys

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.hlo import count_scan_body, kernel_budget, parse_hlo  # noqa: E402

# A hand-written optimized module: a 10-step loop whose body holds one fusion, a
# dot, a copy and a custom-call, plus a nested 3-step loop of one fusion.
HLO = """\
HloModule m, entry_computation_layout={(f32[8]{0})->f32[8]{0}}

%fused_computation (p0: f32[8]) -> f32[8] {
  %p0 = f32[8]{0} parameter(0)
  ROOT %sine = f32[8]{0} sine(%p0)
}

%inner_body (t: (s32[], f32[8])) -> (s32[], f32[8]) {
  %t = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %v = f32[8]{0} get-tuple-element(%t), index=1
  %f = f32[8]{0} fusion(%v), kind=kLoop, calls=%fused_computation
  ROOT %r = (s32[], f32[8]{0}) tuple(%i, %f)
}

%inner_cond (t: (s32[], f32[8])) -> pred[] {
  %t = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %c = s32[] constant(3)
  ROOT %lt = pred[] compare(%i, %c), direction=LT
}

%body (t: (s32[], f32[8])) -> (s32[], f32[8]) {
  %t = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %v = f32[8]{0} get-tuple-element(%t), index=1
  %m = f32[8,8]{1,0} constant({...})
  %d = f32[8]{0} dot(%m, %v), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %cp = f32[8]{0} copy(%d)
  %cc = f32[8]{0} custom-call(%cp), custom_call_target="foo"
  %f = f32[8]{0} fusion(%cc), kind=kLoop, calls=%fused_computation
  %b = f32[8]{0} bitcast(%f)
  %w = (s32[], f32[8]{0}) while((s32[], f32[8]{0}) %t), condition=%inner_cond, \
body=%inner_body, backend_config=@TRIP3
  %wv = f32[8]{0} get-tuple-element(%w), index=1
  ROOT %r = (s32[], f32[8]{0}) tuple(%i, %wv)
}

%cond (t: (s32[], f32[8])) -> pred[] {
  %t = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %c = s32[] constant(10)
  ROOT %lt = pred[] compare(%i, %c), direction=LT
}

ENTRY %main (x: f32[8]) -> f32[8] {
  %x = f32[8]{0} parameter(0)
  %z = s32[] constant(0)
  %t = (s32[], f32[8]{0}) tuple(%z, %x)
  %w = (s32[], f32[8]{0}) while(%t), condition=%cond, body=%body, backend_config=@TRIP10
  ROOT %out = f32[8]{0} get-tuple-element(%w), index=1
}
""".replace("@TRIP3", '{"known_trip_count":{"n":"3"}}').replace(
    "@TRIP10", '{"known_trip_count":{"n":"10"}}'
)


def test_parse_hlo_computations():
    comps, entry = parse_hlo(HLO)
    assert entry == "main"
    assert set(comps) == {"fused_computation", "inner_body", "inner_cond", "body", "cond", "main"}
    assert [i["opcode"] for i in comps["main"]] == [
        "parameter",
        "constant",
        "tuple",
        "while",
        "get-tuple-element",
    ]


def test_count_scan_body_handwritten():
    res = count_scan_body(HLO, n_steps=10)
    assert res["trip_count"] == 10 and res["steps_per_iteration"] == 1
    # body: dot, copy, custom-call, fusion + nested loop 3 x (1 fusion) + 4 x (its test)
    assert res["fusions"] == 1 + 3
    assert res["by_kind"] == {"copy": 1, "custom-call": 1, "dot": 1, "fusion": 4, "other": 4}
    assert res["kernels"] == 4 + 3 + 4
    # 12 instructions in the body, 5 in each inner body run, 4 in each inner test
    assert res["instructions"] == 12 + 3 * 5 + 4 * 4
    assert res["condition_kernels"] == 1  # the compare
    # an unrolled scan: 20 steps in 10 iterations halves the per-step counts
    assert count_scan_body(HLO, n_steps=20)["kernels"] == (4 + 3 + 4) / 2


def test_count_scan_body_no_loop():
    text = (
        "HloModule m\n\nENTRY %main (x: f32[]) -> f32[] {\n  %x = f32[] parameter(0)\n"
        "  %a = f32[] sine(%x)\n  ROOT %b = f32[] cosine(%a)\n}\n"
    )
    with pytest.raises(ValueError, match="no while loop"):
        count_scan_body(text)
    # a fully unrolled scan: the entry's work spread over the steps
    res = count_scan_body(text, n_steps=2)
    assert res["unrolled"] and res["kernels"] == 1 and res["instructions"] == 1.5


def _elementwise_scan(x, n):
    return jax.lax.scan(lambda c, _: (jnp.sin(c) * 2.0 + 1.0, None), x, None, length=n)[0]


@pytest.mark.parametrize("n", [50, 200])
def test_count_plain_lax_scan(n):
    """An elementwise scan body is one fused kernel plus the step counter's add."""
    x = jnp.ones(64)
    text = jax.jit(_elementwise_scan, static_argnums=1).lower(x, n).compile().as_text()
    res = count_scan_body(text, n)
    assert res["trip_count"] == n
    if jax.default_backend() == "cpu":
        assert res["fusions"] == 2
        assert res["kernels"] == 2
        assert res["instructions"] == 7  # + parameter, constant, 2 get-tuple-element, tuple
    # before optimization: sin, multiply, add, the counter's add (+ broadcasts)
    raw = count_scan_body(
        jax.jit(_elementwise_scan, static_argnums=1).lower(x, n).as_text(dialect="hlo"), n
    )
    assert raw["fusions"] == 0 and raw["ops"] >= 4


def test_kernel_budget_of_a_network():
    import nengo

    import nengojax

    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(10, 1)
        nengo.Connection(a, b)
        nengo.Probe(b, synapse=0.01)
    model = nengojax.compile(net)
    one = kernel_budget(model, None, n_steps=20)
    batched = kernel_budget(model, 4, n_steps=20)
    for res in (one, batched):
        assert res["trip_count"] == 20
        assert 0 < res["fusions"] <= res["kernels"] <= res["ops"] <= res["instructions"]
    assert kernel_budget(model, None, n_steps=20, unoptimized=True)["fusions"] == 0
