"""The grounding check: align each generated sentence to the article sentence that supports it.

A language model writes fluent sentences and, sometimes, claims its passages never make. Each
sentence of a draft is compared with every candidate sentence of the retrieved passages:

- **meaning**: cosine similarity of their embeddings, with the model already loaded for
  retrieval (passage sentences reuse the vectors computed at index time when available);
- **words**: the share of the draft sentence's content terms (stemmed, stopwords dropped)
  that the passage sentence contains;
- **new facts**: numbers that appear nowhere in the passages or the question, and proper
  names that are not in the passage holding the supporting sentence ("Xiaohongshu's
  success" backed by a sentence on Labubu's). A sentence that brings one is unsupported
  whatever its score; that is what invention by a small model most often looks like;
- **a statement**: questions, headings ("Premise:"), echoed prompt tags and sentences cut off
  by the token limit are not claims, and are never kept.

``support = W_SIMILARITY * similarity + W_OVERLAP * overlap``. A sentence is supported when its
best support reaches the threshold (calibrated with ``evals/calibrate_grounding.py``; see the
README's "Generated answers" section). The citation then quotes that best sentence: if the
draft cited a passage (``[n]``) that holds a sentence above the threshold, that choice is
kept; otherwise the citation is corrected to the best sentence found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Embedder, Vectors
from redbook_qa.models import Evidence, Passage
from redbook_qa.text.chunking import sentence_embedding_text
from redbook_qa.text.sentences import split_sentences
from redbook_qa.text.terms import analyze

# Calibrated by `python evals/calibrate_grounding.py` on 154 SmolLM2 draft sentences over the
# seeds, labelled by hand in evals/grounding_labels.jsonl (47 supported, 107 not): with the
# rules, 0.4/0.6 weights and 0.60 accept 2.8 % of unsupported sentences and drop 14.9 % of
# supported ones (all of those by the rules: cut-off sentences, names from other passages).
DEFAULT_SUPPORT_THRESHOLD = 0.60
W_SIMILARITY = 0.4
W_OVERLAP = 0.6

_MARKER = re.compile(r"\s*\[(\d{1,3})\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")  # "Musk's" is the name "Musk"
_MIN_WORDS = 3
_CLAIM_END = re.compile(r"[.!][\"'”’)\]]*$")


@dataclass(frozen=True)
class Alignment:
    """One draft sentence and the passage sentence that best supports it.

    ``reason`` says why an unsupported sentence failed ("" when it is supported).
    """

    sentence: str
    evidence: Evidence | None
    support: float
    similarity: float
    overlap: float
    novel: tuple[str, ...]
    cited: tuple[int, ...]
    supported: bool
    corrected: bool
    reason: str = ""


def draft_sentences(draft: str) -> list[tuple[str, tuple[int, ...]]]:
    """Split a draft into sentences, each with the ``[n]`` markers it carried, markers removed."""
    out = []
    for start, end in split_sentences(draft):
        raw = draft[start:end]
        cited = tuple(int(n) for n in _MARKER.findall(raw))
        text = " ".join(_MARKER.sub("", raw).split())
        if sum(ch.isalnum() for ch in text) >= 2:
            out.append((text, cited))
    return out


class Grounder:
    """Check draft sentences against the retrieved passages.

    Args:
        embedder: The retrieval embedder (already loaded; no second model).
        threshold: The support a sentence needs to count as grounded.
    """

    def __init__(self, embedder: Embedder, *, threshold: float = DEFAULT_SUPPORT_THRESHOLD) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def align(
        self,
        draft: str,
        evidence: Sequence[Evidence],
        passages: Sequence[Passage],
        *,
        question: str = "",
        vectors: Vectors | None = None,
    ) -> list[Alignment]:
        """Align every sentence of ``draft``.

        ``passages`` are the passages as numbered ([1]..) in the prompt; ``evidence`` are
        their sentences, the candidates for support, and ``vectors`` their index-time vectors
        (from the context; embedded here only when not given).
        """
        sentences = draft_sentences(draft)
        if not sentences:
            return []
        if not evidence:
            return [_unsupported(text, cited, "no passage") for text, cited in sentences]
        context = " ".join([question, *(p.text for p in passages)])
        numbers = _numbers(context)
        names = _names_in(context)
        drafted = self.embedder.embed_documents([text for text, _ in sentences])
        similarity = drafted @ self._evidence_vectors(evidence, vectors).T
        evidence_terms = [set(analyze(e.text)) for e in evidence]
        in_passage = [passage_of(e, passages) for e in evidence]
        aligned = []
        for i, (text, cited) in enumerate(sentences):
            terms = set(analyze(text))
            overlap = np.array(
                [len(terms & t) / len(terms) if terms else 0.0 for t in evidence_terms],
                dtype=np.float32,
            )
            support = W_SIMILARITY * similarity[i] + W_OVERLAP * overlap
            best = self._best(support, in_passage, cited)
            holder = in_passage[best]
            passage_text = passages[holder - 1].text if holder else evidence[best].text
            novel = tuple(
                sorted((_numbers(text) - numbers) | (_names(text, names) - _words(passage_text)))
            )
            reason = _failure(text, float(support[best]), novel, self.threshold)
            aligned.append(
                Alignment(
                    sentence=text,
                    evidence=evidence[best],
                    support=float(support[best]),
                    similarity=float(similarity[i][best]),
                    overlap=float(overlap[best]),
                    novel=novel,
                    cited=cited,
                    supported=not reason,
                    corrected=bool(cited) and holder not in cited,
                    reason=reason,
                )
            )
        return aligned

    def _best(
        self, support: npt.NDArray[np.float32], in_passage: list[int | None], cited: tuple[int, ...]
    ) -> int:
        best = int(np.argmax(support))
        # Keep the draft's own citation when the passage it named supports the sentence.
        named = [i for i, p in enumerate(in_passage) if p is not None and p in cited]
        if named:
            own = max(named, key=lambda i: float(support[i]))
            if support[own] >= self.threshold:
                return own
        return best

    def _evidence_vectors(self, evidence: Sequence[Evidence], vectors: Vectors | None) -> Vectors:
        if vectors is not None:
            return vectors
        texts = [sentence_embedding_text(e.text, e.title, e.section) for e in evidence]
        return self.embedder.embed_documents(texts)


def _unsupported(text: str, cited: tuple[int, ...], reason: str) -> Alignment:
    return Alignment(text, None, 0.0, 0.0, 0.0, (), cited, False, False, reason)


def _failure(text: str, support: float, novel: tuple[str, ...], threshold: float) -> str:
    """Say why a sentence is not a supported claim ("" if it is one)."""
    stripped = text.rstrip()
    if stripped.endswith(("?", ":")) or not _CLAIM_END.search(stripped):
        return "not a complete statement"  # a question, a heading, or cut off mid-way
    if len(stripped.split()) < _MIN_WORDS:
        return "too short"
    if novel:
        return "not in the passages: " + ", ".join(novel)
    if support < threshold:
        return f"support {support:.2f} below {threshold:.2f}"
    return ""


def passage_of(evidence: Evidence, passages: Sequence[Passage]) -> int | None:
    """Return the number ([1]..) of the passage that holds ``evidence``, if any."""
    for number, passage in enumerate(passages, start=1):
        if passage.source == evidence.source and passage.start <= evidence.start < passage.end:
            return number
    return None


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _names_in(text: str) -> set[str]:
    """Proper names of a text: words it capitalises other than at a sentence start."""
    names = set()
    for start, end in split_sentences(text):
        words = _WORD.findall(text[start:end])
        names |= {w.lower() for w in words[1:] if w[0].isupper() and len(w) > 2}
    return names


def _names(sentence: str, known_names: set[str]) -> set[str]:
    """Names in a draft sentence: capitalised words, and a first word the context capitalises."""
    words = _WORD.findall(sentence)
    names = {w.lower() for w in words[1:] if w[0].isupper() and len(w) > 2}
    if words and words[0].lower() in known_names:
        names.add(words[0].lower())
    return names
