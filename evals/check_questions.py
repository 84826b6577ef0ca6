#!/usr/bin/env python3
"""Validate evals/questions.jsonl against the seed corpus (stdlib only).

Usage:  python evals/check_questions.py [path/to/questions.jsonl]

Checks:
  * every line is a JSON object with exactly the allowed keys and right types
  * ids are unique; kinds are allowed; `follows` points to an earlier followup id
  * answerable cases: source file exists, non-empty evidence and keywords,
    every evidence string occurs verbatim in its source file (or in the file
    given by the parallel `evidence_sources` entry), the gold section is a
    section of the source file and holds at least one evidence string
    (all of them for kind "factual"), every keyword is lowercase and occurs
    somewhere in the corpus, and at least one keyword occurs in the evidence
  * unanswerable cases: source/section null, evidence and keywords empty
  * coverage: every section with body text is the gold section of at least
    one factual case
Prints counts per kind; exits 1 on any error.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, OrderedDict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUESTIONS = HERE / "questions.jsonl"

REQUIRED = {
    "id": str,
    "question": str,
    "answerable": bool,
    "source": (str, type(None)),
    "section": (str, type(None)),
    "evidence": list,
    "answer_keywords": list,
    "kind": str,
}
OPTIONAL = {"evidence_sources": list, "follows": str}
KINDS = {
    "factual",
    "synthesis",
    "paraphrase",
    "alias",
    "chinese",
    "unanswerable",
    "offtopic",
    "injection",
    "followup",
}
ALWAYS_ANSWERABLE = {"factual", "synthesis", "paraphrase", "alias", "chinese", "followup"}
NEVER_ANSWERABLE = {"unanswerable", "offtopic"}
ID_RE = re.compile(r"^[a-z]+-\d{3}[a-z]?$")

# Heading rule: a short line without terminal punctuation, not a hashtag line.
# NOTE: lines ending in "?" ARE treated as headings here (e.g. "Beyond the
# Algorithm: A User-Centric Experience?", "Japanese Storytelling: ... Lack
# Thereof?"), because in the corpus they are clearly headings.
HEADING_TERMINALS = (".", "!", ":", ";", ",", "→")
HEADING_MAX_LEN = 150


def seeds_dir() -> Path:
    for cand in (REPO / "seeds", REPO.parent / "shared" / "seeds"):
        if cand.is_dir():
            return cand
    sys.exit(
        "error: no seeds/ directory (looked in {} and {})".format(
            REPO / "seeds", REPO.parent / "shared" / "seeds"
        )
    )


def is_heading_line(s: str) -> bool:
    s = s.strip()
    return (
        bool(s)
        and len(s) <= HEADING_MAX_LEN
        and not s.endswith(HEADING_TERMINALS)
        and not re.match(r"#\S", s)
    )


def sections(text: str):
    """Return list of (name, start, end, has_body) char spans; first line is the title."""
    lines = text.splitlines(keepends=True)
    spans = []  # [name, start, end, has_body]
    pos = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if i == 0 or (i > 0 and is_heading_line(s)):
            if spans:
                spans[-1][2] = pos
            spans.append([s, pos, None, i == 0])
        elif s:
            spans[-1][3] = True
        pos += len(line)
    spans[-1][2] = pos
    return [tuple(x) for x in spans]


def section_of(spans, offset):
    for name, start, end, _ in spans:
        if start <= offset < end:
            return name
    return None


def occurrences(text, sub):
    i = text.find(sub)
    while i != -1:
        yield i
        i = text.find(sub, i + 1)


def main():
    qpath = Path(sys.argv[1]) if len(sys.argv) > 1 else QUESTIONS
    sdir = seeds_dir()
    corpus = {p.name: p.read_text(encoding="utf-8") for p in sorted(sdir.glob("*.txt"))}
    spans = {name: sections(t) for name, t in corpus.items()}
    corpus_lower = "\n".join(corpus.values()).lower()

    errors = []
    cases = OrderedDict()
    kinds = Counter()
    answerable_by_kind = Counter()
    factual_sections = set()

    def err(cid, msg):
        errors.append(f"{cid}: {msg}")

    with open(qpath, encoding="utf-8") as fh:
        raw_lines = fh.read().splitlines()
    for lineno, raw in enumerate(raw_lines, 1):
        where = "line %d" % lineno
        if not raw.strip():
            err(where, "blank line")
            continue
        try:
            c = json.loads(raw)
        except json.JSONDecodeError as e:
            err(where, f"invalid JSON: {e}")
            continue
        if not isinstance(c, dict):
            err(where, "not a JSON object")
            continue
        cid = c.get("id") if isinstance(c.get("id"), str) else where
        keys = set(c)
        missing = set(REQUIRED) - keys
        extra = keys - set(REQUIRED) - set(OPTIONAL)
        if missing:
            err(cid, f"missing keys {sorted(missing)}")
        if extra:
            err(cid, f"unexpected keys {sorted(extra)}")
        bad_type = False
        for k, t in list(REQUIRED.items()) + list(OPTIONAL.items()):
            if k in c and not isinstance(c[k], t):
                err(cid, f"key {k!r} has wrong type {type(c[k]).__name__}")
                bad_type = True
        if missing or bad_type:
            continue
        if not ID_RE.match(c["id"]):
            err(cid, "id does not look like 'kind-NNN[a]'")
        if c["id"] in cases:
            err(cid, "duplicate id")
            continue
        if not c["question"].strip():
            err(cid, "empty question")
        kind = c["kind"]
        if kind not in KINDS:
            err(cid, f"unknown kind {kind!r}")
        kinds[kind] += 1
        ans = c["answerable"]
        if ans:
            answerable_by_kind[kind] += 1
        if kind in ALWAYS_ANSWERABLE and not ans:
            err(cid, f"kind {kind} must be answerable")
        if kind in NEVER_ANSWERABLE and ans:
            err(cid, f"kind {kind} must not be answerable")
        for k in ("evidence", "answer_keywords"):
            if not all(isinstance(x, str) and x.strip() for x in c[k]):
                err(cid, f"{k} must be a list of non-empty strings")

        # follows
        if "follows" in c:
            if kind != "followup":
                err(cid, "'follows' only allowed on followup cases")
            prev = cases.get(c["follows"])
            if prev is None:
                err(cid, "follows {!r} which is not an earlier id".format(c["follows"]))
            elif prev["kind"] != "followup":
                err(cid, "follows {!r} which is not a followup case".format(c["follows"]))

        if ans:
            src, sec, ev, kw = c["source"], c["section"], c["evidence"], c["answer_keywords"]
            if not src or src not in corpus:
                err(cid, f"source {src!r} not found in {sdir}")
                cases[c["id"]] = c
                continue
            if not ev:
                err(cid, "answerable case needs evidence")
            if not kw:
                err(cid, "answerable case needs answer_keywords")
            ev_src = c.get("evidence_sources")
            if ev_src is not None:
                if len(ev_src) != len(ev):
                    err(cid, "evidence_sources must be parallel to evidence")
                    ev_src = None
                elif len(set(ev_src)) < 2:
                    err(cid, "evidence_sources only allowed when evidence spans several files")
                elif src not in ev_src:
                    err(cid, "gold source not among evidence_sources")
            files = ev_src if ev_src is not None else [src] * len(ev)
            sec_names = [s[0] for s in spans[src]]
            if sec not in sec_names:
                err(cid, f"section {sec!r} is not a section of {src}")
            in_gold = 0
            for e, f in zip(ev, files, strict=False):
                if f not in corpus:
                    err(cid, f"evidence source {f!r} not found")
                    continue
                offs = list(occurrences(corpus[f], e))
                if not offs:
                    err(cid, f"evidence not found verbatim in {f}: {e[:80]!r}")
                    continue
                secs = {section_of(spans[f], o) for o in offs}
                if f == src and sec in secs:
                    in_gold += 1
                elif kind == "factual":
                    err(
                        cid,
                        f"factual evidence {e[:50]!r} lies in {sorted(s for s in secs if s)}, not in gold section {sec!r}",
                    )
            if ev and in_gold == 0:
                err(cid, f"no evidence string lies in gold section {sec!r}")
            if kind == "factual":
                factual_sections.add((src, sec))
            ev_lower = "\n".join(ev).lower()
            for k in kw:
                if k != k.lower():
                    err(cid, f"keyword {k!r} is not lowercase")
                if k.lower() not in corpus_lower:
                    err(cid, f"keyword {k!r} never occurs in the corpus")
            if kw and not any(k.lower() in ev_lower for k in kw):
                err(cid, "no keyword occurs in the evidence")
        else:
            if c["source"] is not None or c["section"] is not None:
                err(cid, "unanswerable case must have null source and section")
            if c["evidence"] or c["answer_keywords"]:
                err(cid, "unanswerable case must have empty evidence and answer_keywords")
            if "evidence_sources" in c:
                err(cid, "unanswerable case must not have evidence_sources")
        cases[c["id"]] = c

    # coverage of sections by factual questions
    for f, sp in spans.items():
        for name, _, _, has_body in sp:
            if has_body and (f, name) not in factual_sections:
                err("coverage", f"no factual question for section {name!r} of {f}")

    print("questions: %d (from %s, seeds: %s)" % (sum(kinds.values()), qpath, sdir))
    for k in sorted(KINDS):
        print("  %-13s %3d  (answerable %d)" % (k, kinds[k], answerable_by_kind[k]))
    if errors:
        print("\n%d error(s):" % len(errors))
        for e in errors:
            print("  " + e)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
