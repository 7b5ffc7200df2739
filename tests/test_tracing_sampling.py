"""The sampling rule of `Tracing.server`, pinned against the SDK's own samplers and a real OTLP receiver.

A root call (no incoming trace context) is judged without calling the sampler: these tests hold
that shortcut to the SDK's `TraceIdRatioBased` rule call by call, and check that a caller's
sampled or unsampled parent decides alone, at any ratio. `shutdown()` flushes the exporter, so
the receiver then holds every span that was recorded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

from scopesvc.ops.otel import Dropped, Span, Tracing, root_bound

from .otlp_receiver import Receiver

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SAMPLED = {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"}
UNSAMPLED = {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-00"}
CALLS = 400


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def serve_calls(receiver: Receiver, monkeypatch: pytest.MonkeyPatch, sampler: str, ratio: str,
                carrier: dict[str, str] | None) -> tuple[list[int], list[int]]:
    """The trace ids of CALLS calls: those exported (as the receiver got them) and those dropped."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    tracing = Tracing()
    dropped, recorded = [], []
    for _ in range(CALLS):
        scope = tracing.server("Check", carrier, {})
        with scope as span:
            span.set_attribute("scopesvc.decision", "allow")
        if isinstance(scope, Dropped):
            dropped.append(scope.trace_id)
        else:
            assert isinstance(scope, Span)
            recorded.append(scope.span.get_span_context().trace_id)
    tracing.shutdown()
    exported = [int(span.trace_id, 16) for span in receiver.spans]
    assert sorted(exported) == sorted(recorded)
    return exported, dropped


@pytest.mark.parametrize("sampler", ["traceidratio", "parentbased_traceidratio"])
@pytest.mark.parametrize("ratio", ["0", "0.5", "1"])
def test_a_root_call_is_sampled_exactly_as_the_sdk_ratio_sampler_decides(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch, sampler: str, ratio: str) -> None:
    exported, dropped = serve_calls(receiver, monkeypatch, sampler, ratio, None)
    rule = TraceIdRatioBased(float(ratio))
    assert all(rule.should_sample(None, trace_id, "Check").decision.is_sampled() for trace_id in exported)
    assert not any(rule.should_sample(None, trace_id, "Check").decision.is_sampled() for trace_id in dropped)
    assert len(exported) == {"0": 0, "1": CALLS}.get(ratio, len(exported))
    assert all(trace_id for trace_id in dropped)  # the decision log still gets an id
    if ratio == "0.5":
        assert 0 < len(exported) < CALLS


@pytest.mark.parametrize("ratio", ["0", "0.01", "1"])
def test_a_sampled_parent_is_always_exported_and_an_unsampled_one_never(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch, ratio: str) -> None:
    exported, dropped = serve_calls(receiver, monkeypatch, "parentbased_traceidratio", ratio, SAMPLED)
    assert exported == [int(TRACE_ID, 16)] * CALLS and not dropped
    receiver.spans.clear()
    exported, dropped = serve_calls(receiver, monkeypatch, "parentbased_traceidratio", ratio, UNSAMPLED)
    assert not exported and dropped == [int(TRACE_ID, 16)] * CALLS  # the caller's id, for the decision log


def test_the_shortcut_reads_the_bound_of_the_sdk_sampler() -> None:
    assert root_bound(ParentBased(TraceIdRatioBased(0.01))) == TraceIdRatioBased(0.01).bound
    assert root_bound(TraceIdRatioBased(0.25)) == TraceIdRatioBased(0.25).bound
    assert root_bound(ParentBased(TraceIdRatioBased(1))) == 1 << 64
    assert root_bound(ParentBased(ALWAYS_ON)) is None
