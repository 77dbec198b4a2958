import pytest
from django.core.cache import cache

from agents.catalog import catalog_forget
from agents.services import agent_create, provider_save
from tests.llmserver import close, serve_llm


@pytest.fixture
def llm():
    server, recorder = serve_llm()
    yield recorder
    close(server)


@pytest.fixture(autouse=True)
def _fresh_breakers_and_answers():
    cache.clear()
    catalog_forget()  # what an earlier test defined is rolled back


@pytest.fixture
def provider(operator):
    def make(slug: str, kind: str = "simulated", **fields):
        provider, _ = provider_save(source={"slug": slug, "kind": kind, **fields}, by=operator)
        return provider

    return make


@pytest.fixture
def agent(operator):
    def make(slug: str, chain, prompt: str = "Answer: {{ question }}", **fields):
        links = [{"provider": p, "model": m} for p, m in chain]
        spec = {"slug": slug, "prompt": prompt, "chain": links, **fields}
        return agent_create(source=spec, by=operator)

    return make
