"""Concept extractors: a deterministic built-in one, and any OpenAI-compatible chat endpoint."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

if TYPE_CHECKING:
    import httpx

MAX_CONCEPTS = 8
_WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")
STOPWORDS = frozenset((Path(__file__).parent / "stopwords.txt").read_text().split())


class Concept(TypedDict):
    term: str
    weight: float  # in (0, 1], the most important concept is 1


class Extractor(Protocol):
    name: str

    async def extract(self, text: str) -> list[Concept]: ...


class KeywordExtractor:
    """Frequency of content words; ties broken by first appearance. Same text, same concepts."""

    name = "builtin-keywords"

    async def extract(self, text: str) -> list[Concept]:
        words = [w.strip("-") for w in _WORD.findall(text.lower())]
        words = [w for w in words if len(w) > 2 and w not in STOPWORDS]
        if not words:
            return []
        counts = Counter(words)
        first_seen = {w: i for i, w in reversed(list(enumerate(words)))}
        ranked = sorted(counts, key=lambda w: (-counts[w], first_seen[w]))[:MAX_CONCEPTS]
        top = counts[ranked[0]]
        return [Concept(term=w, weight=round(counts[w] / top, 4)) for w in ranked]


class OpenAICompatibleExtractor:
    """Asks a chat-completions endpoint (Ollama, vLLM, OpenAI...) for a JSON list of concepts."""

    name = "openai-compatible"
    PROMPT = (
        "List the key concepts of the user's text as a JSON array of short lowercase strings, "
        f"at most {MAX_CONCEPTS}, most important first. Reply with the JSON array only."
    )

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model = model
        import httpx  # only with an endpoint configured: it costs every replica start 70 ms otherwise

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(headers=headers, timeout=60, transport=transport)

    async def extract(self, text: str) -> list[Concept]:
        response = await self.client.post(
            self.url,
            json={
                "model": self.model,
                "temperature": 0,
                "messages": [{"role": "system", "content": self.PROMPT}, {"role": "user", "content": text}],
            },
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        terms = self._parse_terms(content)
        count = len(terms)
        return [Concept(term=t, weight=round(1 - i / max(count, 1), 4)) for i, t in enumerate(terms)]

    @staticmethod
    def _parse_terms(content: str) -> list[str]:
        match = re.search(r"\[.*\]", content, re.DOTALL)
        if not match:
            raise ValueError("the model did not answer with a JSON array")
        seen: list[str] = []
        for item in json.loads(match.group(0)):
            term = str(item).strip().lower()[:100]
            if term and term not in seen:
                seen.append(term)
        return seen[:MAX_CONCEPTS]

    async def close(self) -> None:
        await self.client.aclose()
