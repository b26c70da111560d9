from __future__ import annotations

import json

import httpx

from app.ai.extractors import KeywordExtractor, OpenAICompatibleExtractor
from app.ai.pipeline import concept_id

TEXT = (
    "Redis keeps sessions. Sessions expire; Redis replicas share sessions. "
    "PostgreSQL stores nodes and the nodes link by edges."
)


async def test_keyword_extractor_ranks_by_frequency_then_position() -> None:
    concepts = await KeywordExtractor().extract(TEXT)
    terms = [c["term"] for c in concepts]
    assert terms[:3] == ["sessions", "redis", "nodes"]
    assert concepts[0]["weight"] == 1.0
    assert all(0 < c["weight"] <= 1 for c in concepts)
    assert "the" not in terms and "and" not in terms


async def test_keyword_extractor_is_deterministic() -> None:
    assert await KeywordExtractor().extract(TEXT) == await KeywordExtractor().extract(TEXT)


async def test_keyword_extractor_on_no_content_words() -> None:
    assert await KeywordExtractor().extract("a an the of") == []


async def test_openai_compatible_extractor_speaks_chat_completions() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        answer = 'Here you go: ["Graph", "sessions", "graph", "Redis"]'
        return httpx.Response(200, json={"choices": [{"message": {"content": answer}}]})

    extractor = OpenAICompatibleExtractor(
        "http://ollama:11434", "llama3.2", "k", transport=httpx.MockTransport(handler)
    )
    concepts = await extractor.extract("some text")
    await extractor.close()
    assert seen["url"] == "http://ollama:11434/v1/chat/completions"
    assert seen["auth"] == "Bearer k"
    assert [c["term"] for c in concepts] == ["graph", "sessions", "redis"]
    assert concepts[0]["weight"] > concepts[-1]["weight"]


def test_concept_ids_are_stable_slugs() -> None:
    assert concept_id("Memory Leak!") == "concept:memory-leak"
