import socket
import time
from email.utils import formatdate

import httpx
import pytest

from agents.wire import (
    Attempt,
    ProviderError,
    Reply,
    Request,
    api_key_from_env,
    send,
    send_with_retries,
    simulate,
)
from tests.llmserver import close, serve_llm

KEY = "sk-test-secret-0123456789"
REQUEST = Request(
    model="m-1", system="You answer briefly.", prompt="Say hi.", max_tokens=64, timeout_s=2
)


@pytest.fixture
def llm():
    server, recorder = serve_llm()
    yield recorder
    close(server)


@pytest.fixture
def client():
    with httpx.Client() as client:
        yield client


def call(llm, client, kind, on_attempt, **overrides) -> Reply:
    """Send through the retry layer to the test vendor, with fast backoff unless overridden."""
    settings = {"api_key": KEY, "request": REQUEST, "max_attempts": 3, "backoff_s": 0.01}
    return send_with_retries(
        kind,
        base_url=llm.base_url(kind),
        client=client,
        on_attempt=on_attempt,
        **{**settings, "max_backoff_s": 0.05, **overrides},
    )


def failing_call(llm, client, kind, **overrides) -> tuple[ProviderError, list[Attempt]]:
    attempts = []
    with pytest.raises(ProviderError) as raised:
        call(llm, client, kind, attempts.append, **overrides)
    return raised.value, attempts


def test_anthropic_posts_messages_and_joins_text_blocks(llm, client):
    llm.then(
        (
            "json",
            {
                "content": [
                    {"type": "text", "text": "Hello, "},
                    {"type": "tool_use", "id": "t1", "name": "x", "input": {}},
                    {"type": "text", "text": "world."},
                ],
                "usage": {"input_tokens": 21, "output_tokens": 4},
            },
        )
    )

    reply = send(
        "anthropic", base_url=llm.base_url("anthropic"), api_key=KEY, request=REQUEST, client=client
    )

    assert reply == Reply(text="Hello, world.", input_tokens=21, output_tokens=4)
    [sent] = llm.requests
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["json"] == {
        "model": "m-1",
        "max_tokens": 64,
        "system": "You answer briefly.",
        "messages": [{"role": "user", "content": "Say hi."}],
    }


def test_openai_posts_chat_completions_with_bearer_and_system_message(llm, client):
    llm.then(("ok", "Hi!", 30, 2))

    reply = send(
        "openai", base_url=llm.base_url("openai"), api_key=KEY, request=REQUEST, client=client
    )

    assert reply == Reply(text="Hi!", input_tokens=30, output_tokens=2)
    [sent] = llm.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["json"] == {
        "model": "m-1",
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Say hi."},
        ],
    }


def test_openai_without_key_or_system_sends_neither(llm, client):
    request = Request(model="m-1", system="", prompt="Say hi.", max_tokens=8, timeout_s=2)

    send("openai", base_url=llm.base_url("openai"), api_key=None, request=request, client=client)

    [sent] = llm.requests
    assert "authorization" not in sent["headers"]
    assert sent["json"]["messages"] == [{"role": "user", "content": "Say hi."}]


def test_ollama_posts_api_chat_without_streaming(llm, client):
    llm.then(("ok", "Hey.", 40, 3))

    reply = send(
        "ollama", base_url=llm.base_url("ollama"), api_key=None, request=REQUEST, client=client
    )

    assert reply == Reply(text="Hey.", input_tokens=40, output_tokens=3)
    [sent] = llm.requests
    assert sent["path"] == "/api/chat"
    assert sent["json"] == {
        "model": "m-1",
        "stream": False,
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Say hi."},
        ],
        "options": {"num_predict": 64},
    }


def test_429_waits_its_retry_after_before_the_next_attempt(llm, client):
    llm.then(("status", 429, {"Retry-After": "2"}), ("ok", "late but fine", 5, 1))
    attempts, heard_at = [], []

    def on_attempt(attempt):
        heard_at.append(time.monotonic())
        attempts.append(attempt)

    reply = call(llm, client, "anthropic", on_attempt)

    assert reply.text == "late but fine"
    first, second = llm.requests
    assert second["at"] - first["at"] >= 2
    assert first["at"] < heard_at[0] < second["at"]  # the failure was heard before the retry
    assert attempts[0].error.code == "http_429"
    assert attempts[0].error.retry_after_s == 2
    assert attempts[1].reply == reply and attempts[1].number == 2


def test_retry_after_as_http_date_is_read_as_seconds(llm, client):
    llm.then(("status", 503, {"Retry-After": formatdate(time.time() + 30, usegmt=True)}))

    with pytest.raises(ProviderError) as raised:
        send("openai", base_url=llm.base_url("openai"), api_key=KEY, request=REQUEST, client=client)

    assert 28 <= raised.value.retry_after_s <= 30


@pytest.mark.parametrize("kind", ["anthropic", "openai", "ollama"])
@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_until_attempts_run_out(llm, client, kind, status):
    llm.then(*[("status", status)] * 3)

    error, attempts = failing_call(llm, client, kind)

    assert len(llm.requests) == 3
    assert [attempt.number for attempt in attempts] == [1, 2, 3]
    assert error.code == f"http_{status}" and error.status == status and error.retryable
    assert f"test vendor says {status}" in error.message


def test_server_error_then_success_returns_the_reply(llm, client):
    llm.then(("status", 500), ("ok", "second time", 3, 2))
    attempts = []

    reply = call(llm, client, "openai", attempts.append)

    assert reply.text == "second time"
    assert [bool(attempt.error) for attempt in attempts] == [True, False]


def test_an_attempt_slower_than_its_timeout_fails_with_timeout_and_is_retried(llm, client):
    llm.then(("sleep", 1), ("sleep", 1))
    request = Request(model="m-1", system="", prompt="Hi", max_tokens=8, timeout_s=0.2)

    error, attempts = failing_call(llm, client, "openai", request=request, max_attempts=2)

    assert error.code == "timeout" and error.retryable
    assert len(llm.requests) == 2
    assert all(0.2 <= attempt.latency_s < 0.9 for attempt in attempts)


def test_a_refused_connection_is_retried_then_raised(client):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    attempts = []

    with pytest.raises(ProviderError) as raised:
        send_with_retries(
            "ollama",
            base_url=f"http://127.0.0.1:{port}",
            api_key=None,
            request=REQUEST,
            client=client,
            max_attempts=3,
            backoff_s=0.01,
            max_backoff_s=0.05,
            on_attempt=attempts.append,
        )

    assert raised.value.code == "connection" and raised.value.status is None
    assert len(attempts) == 3


@pytest.mark.parametrize("behaviour", [("malformed",), ("no_usage",)])
@pytest.mark.parametrize("kind", ["anthropic", "openai", "ollama"])
def test_unusable_replies_are_retried_as_bad_reply(llm, client, kind, behaviour):
    llm.then(*[behaviour] * 3)

    error, attempts = failing_call(llm, client, kind)

    assert len(llm.requests) == 3
    assert error.code == "bad_reply" and error.retryable and error.usage is None


def test_a_reply_without_text_carries_the_usage_it_reported(llm, client):
    usage = {"prompt_tokens": 9, "completion_tokens": 4}
    llm.then(("json", {"choices": [{"message": {"content": None}}], "usage": usage}))
    llm.then(("ok", "there it is", 9, 3))
    attempts = []

    reply = call(llm, client, "openai", attempts.append)

    assert reply.text == "there it is"
    assert attempts[0].error.code == "bad_reply"
    assert attempts[0].error.usage == (9, 4)


@pytest.mark.parametrize("kind", ["anthropic", "openai", "ollama"])
@pytest.mark.parametrize("status", [400, 401])
def test_client_errors_are_not_retried_and_keep_status_and_excerpt(llm, client, kind, status):
    llm.then(("status", status, {}, "model m-1 is not enabled for this key " + "x" * 2000))

    error, attempts = failing_call(llm, client, kind)

    assert len(llm.requests) == 1 and len(attempts) == 1
    assert error.status == status and error.code == f"http_{status}" and not error.retryable
    assert "model m-1 is not enabled for this key" in error.message
    assert len(error.message) <= 300


def test_the_api_key_never_appears_in_an_error_message(llm, client):
    llm.then(("status", 401, {}, f"Incorrect API key provided: {KEY}.\n\n  Check it."))

    error, _ = failing_call(llm, client, "openai")

    assert KEY not in error.message
    assert "Incorrect API key provided: ***. Check it." in error.message


def test_an_answer_failing_validation_is_a_failed_attempt_with_usage(llm, client):
    llm.then(("ok", "not json", 8, 2), ("ok", '{"score": 1}', 8, 5))

    def validate(reply):
        if not reply.text.startswith("{"):
            raise ProviderError("answer is not JSON", code="invalid_output", retryable=True)

    attempts = []

    reply = call(llm, client, "anthropic", attempts.append, validate=validate)

    assert reply.text == '{"score": 1}'
    assert attempts[0].reply is None
    assert attempts[0].error.code == "invalid_output"
    assert attempts[0].error.usage == (8, 2)


def test_a_non_retryable_error_from_validation_stops_at_once(llm, client):
    def validate(reply):
        raise ProviderError("refused", code="invalid_output", retryable=False)

    error, attempts = failing_call(llm, client, "ollama", validate=validate)

    assert len(llm.requests) == 1 and error.code == "invalid_output"


def test_an_unusable_base_url_is_not_retried(client):
    with pytest.raises(ProviderError) as raised:
        send("openai", base_url="ftp://host/v1", api_key=KEY, request=REQUEST, client=client)

    assert raised.value.code == "bad_url" and not raised.value.retryable


def test_an_unknown_kind_is_a_programming_error(client):
    with pytest.raises(ValueError, match="simulated"):
        send("simulated", base_url="http://x", api_key=None, request=REQUEST, client=client)


def test_simulated_echoes_the_prompt_with_counted_tokens():
    reply = simulate(REQUEST, script=None)

    assert reply == simulate(REQUEST, script={})
    assert reply.text == "echo: Say hi."
    assert reply.input_tokens == 7  # len("You answer briefly.Say hi.") / 4, rounded up
    assert reply.output_tokens == 4


def test_simulated_answers_by_model_then_wildcard():
    script = {"m-1": "for m-1", "*": "for anyone"}
    other = Request(model="m-2", system="", prompt="", max_tokens=8, timeout_s=1)

    assert simulate(REQUEST, script=script).text == "for m-1"
    assert simulate(other, script=script).text == "for anyone"
    assert simulate(other, script=script).input_tokens == 1


def test_simulated_latency_is_slept():
    started = time.monotonic()

    simulate(REQUEST, script=None, latency_s=0.1)

    assert time.monotonic() - started >= 0.1


def test_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("CHAMELEON_TEST_KEY", raising=False)

    with pytest.raises(ProviderError) as raised:
        api_key_from_env("CHAMELEON_TEST_KEY")

    assert raised.value.code == "missing_key" and not raised.value.retryable
    assert "CHAMELEON_TEST_KEY" in raised.value.message


def test_key_variable_is_read_and_none_needs_none(monkeypatch):
    monkeypatch.setenv("CHAMELEON_TEST_KEY", KEY)

    assert api_key_from_env("CHAMELEON_TEST_KEY") == KEY
    assert api_key_from_env(None) is None
