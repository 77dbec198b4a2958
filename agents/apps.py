from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self):
        from agents.executor import AgentExecutor, CapabilityExecutor
        from agents.loading import agents_load_dir, providers_load_dir
        from agents.selectors import llm_calls_panel
        from workflows.engine import api

        api.executor_register(AgentExecutor())
        api.executor_register(CapabilityExecutor())
        api.definitions_register("providers", providers_load_dir)
        api.definitions_register("agents", agents_load_dir)
        api.run_page_register("LLM calls", _llm_calls_url)
        api.run_panel_register(
            "llm-calls", "agents/llm_calls_panel.html", llm_calls_panel,
            title="LLM calls", reload_on=("llm.",),
        )  # fmt: skip
        for event_type, payload in EVENT_TYPES.items():
            api.event_type_register(event_type, payload)


def _llm_calls_url(run_id: str) -> str:
    from django.urls import reverse

    return f"{reverse('admin:agents_llmcall_changelist')}?q={run_id}"


# The run events of agent steps; each payload also has `step`.
EVENT_TYPES = {
    "llm.attempt": "provider, model, attempt, outcome (ok/error/skipped), latency_ms, "
    "input_tokens, output_tokens, cost_usd, error",
    "llm.switch": "agent, from, to (provider/model pairs of the chain)",
    "llm.fallback": "agent, to (the fallback agent)",
    "llm.cache_hit": "agent, agent_version",
    "llm.breaker": "provider, state (open/closed: changed by this step's call)",
}
