"""LLM metrics, exported at /metrics from web and worker processes alike (the multiprocess
directory of the settings)."""

from prometheus_client import Counter, Gauge

llm_calls_total = Counter(
    "chameleon_llm_calls_total", "LLM call attempts.", ["provider", "model", "outcome"]
)
llm_tokens_total = Counter(
    "chameleon_llm_tokens_total", "Tokens of LLM calls.", ["provider", "model", "direction"]
)
llm_cost_usd_total = Counter(
    "chameleon_llm_cost_usd_total", "What LLM calls cost, in USD.", ["provider", "model"]
)
circuit_open = Gauge(
    "chameleon_circuit_open",
    "1 while the provider's breaker is open (as last seen by a process).",
    ["provider"],
    multiprocess_mode="mostrecent",
)


def call_counted(call) -> None:
    labels = {"provider": call.provider, "model": call.model}
    llm_calls_total.labels(outcome=call.outcome, **labels).inc()
    llm_tokens_total.labels(direction="input", **labels).inc(call.input_tokens)
    llm_tokens_total.labels(direction="output", **labels).inc(call.output_tokens)
    llm_cost_usd_total.labels(**labels).inc(float(call.cost_usd))


def breaker_seen(provider: str, state: str) -> None:
    circuit_open.labels(provider=provider).set(1 if state == "open" else 0)
