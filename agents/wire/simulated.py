"""The simulated provider: deterministic, offline replies for demos and tests."""

import math
import time

from agents.wire.reply import Reply, Request


def simulate(request: Request, *, script: dict | None, latency_s: float = 0) -> Reply:
    """Answer from `script` (model name, else "*", to reply text), else echo the prompt."""
    script = script or {}
    text = script.get(request.model, script.get("*", f"echo: {request.prompt}"))
    if latency_s > 0:
        time.sleep(latency_s)
    return Reply(
        text=text,
        input_tokens=count_tokens(request.system + request.prompt),
        output_tokens=count_tokens(text),
    )


def count_tokens(text: str) -> int:
    """Estimate tokens as a vendor tokenizer roughly would: four characters each, at least one."""
    return max(1, math.ceil(len(text) / 4))
