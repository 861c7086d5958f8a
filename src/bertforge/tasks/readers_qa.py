"""Reader for extractive QA: SQuAD v1.1 / v2.0 JSON (which CMRC2018 also uses), and flat records
(``id, question, context, answers``) as JSON lines or a JSON array.

Every answer is checked against its context: ``context[answer_start:answer_start + len(text)]`` must
be the answer text, because a shifted span trains the model on the wrong tokens. Real files are not
all clean, so two cases are accepted, and logged, instead of rejected:

* a span off by a few characters (CMRC2018 has a dozen off by one) is moved to the nearest
  occurrence of its text within ``max_shift`` characters;
* ``answer_start == -1`` (CMRC2018 dev has ~200 extra references written by annotators that do not
  occur in the context) keeps the answer as a text-only reference for evaluation, with
  ``answer_start = -1``. A question still needs one located answer, and that one is put first, so
  ``answers[0]`` is always a span of the context.

Anything else that does not match is a malformed question, named by its id with both strings. SQuAD
v2.0 questions with ``is_impossible`` have no answers (``plausible_answers`` are ignored, as in the
official evaluation). Questions without an ``answers`` key (a test file) are read unlabelled.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .examples import QAExample, ReadResult
from .readers_common import RowErrors, read_text

logger = logging.getLogger(__name__)


def _id_lines(text: str) -> dict[str, int]:
    """Line number of every ``"id": "..."`` in the raw JSON, so errors can point into the file."""
    lines: dict[str, int] = {}
    line, position = 1, 0
    for match in re.finditer(r'"id"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
        line += text.count("\n", position, match.start())
        position = match.start()
        lines.setdefault(match.group(1), line)
    return lines


def _records(path: str | Path, text: str) -> list[tuple[int | str, dict[str, Any] | str, Any]]:
    """(line, question record or why the line is unreadable, context) for SQuAD JSON or JSON lines."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.lstrip().split("\n", 1)[0]
        if not first.rstrip().endswith("}"):  # not JSON lines either: report the document's error
            raise BertForgeError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        document = None
    if isinstance(document, dict) and "data" not in document and not {"question", "context"} & set(document):
        # one JSON object that is neither SQuAD nor a question record (a one-line JSON-lines file)
        keys = ", ".join(map(repr, list(document)[:10])) or "none"
        raise BertForgeError(
            f'{path} is not SQuAD JSON: it has no "data" list (its keys: {keys}); expected '
            '{"data": [{"paragraphs": [{"context": ..., "qas": [...]}]}]} or one question per line'
        )
    if isinstance(document, dict) and "data" in document:
        if not isinstance(document["data"], list):
            raise BertForgeError(f'{path} is not SQuAD JSON: expected {{"data": [{{"paragraphs": [...]}}]}}')
        lines = _id_lines(text)
        records = []
        for article in document["data"]:
            for paragraph in article.get("paragraphs", []):
                context = paragraph.get("context")
                for qa in paragraph.get("qas", []):
                    qid = str(qa.get("id", ""))
                    records.append((lines.get(qid, f"question {qid!r}"), qa, context))
        return records
    if isinstance(document, list):  # a JSON array of flat records, numbered by position
        return [
            (n, r, r.get("context")) if isinstance(r, dict) else (n, "expected a JSON object", None)
            for n, r in enumerate(document, start=1)
        ]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append((number, f"invalid JSON ({exc.msg} at column {exc.colno})", None))
            continue
        if not isinstance(record, dict):
            records.append((number, "expected a JSON object per line", None))
            continue
        records.append((number, record, record.get("context")))
    return records


def _answers(raw: Any) -> list[dict[str, Any]] | None:
    """Answers as a list of {"text", "answer_start"}; also takes the column layout of Hugging Face
    datasets ({"text": [...], "answer_start": [...]}). None when malformed."""
    if isinstance(raw, dict) and isinstance(raw.get("text"), list):
        starts = raw.get("answer_start", [-1] * len(raw["text"]))
        raw = [{"text": t, "answer_start": s} for t, s in zip(raw["text"], starts, strict=False)]
    if not isinstance(raw, list):
        return None
    answers = []
    for answer in raw:
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            return None
        start = answer.get("answer_start", -1)
        if isinstance(start, str) and re.fullmatch(r"-?\d+", start):
            start = int(start)
        if not isinstance(start, int):
            return None
        answers.append({"text": answer["text"], "answer_start": start})
    return answers


def _nearest(context: str, text: str, start: int, max_shift: int) -> int | None:
    best = None
    for match in re.finditer(re.escape(text), context):
        shift = abs(match.start() - start)
        if shift <= max_shift and (best is None or shift < abs(best - start)):
            best = match.start()
    return best


def read_qa_examples(
    path: str | Path, *, on_error: str = "raise", max_shift: int = 20
) -> ReadResult[QAExample]:
    """Read SQuAD v1.1 / v2.0 JSON (CMRC2018 included), or JSON lines with ``id, question, context,
    answers``, checking every answer span against its context (see the module docstring)."""
    errors = RowErrors(path, on_error)
    text = read_text(path)
    examples: list[QAExample] = []
    seen: set[str] = set()
    moved = text_only = 0
    for line, qa, context in _records(path, text):
        if isinstance(qa, str):
            errors.bad(line, qa)
            continue
        qid, question = qa.get("id"), qa.get("question")
        if qid is None or not isinstance(question, str) or not isinstance(context, str):
            errors.bad(line, "a question needs an id, a question string and a context string")
            continue
        qid = str(qid)
        if qid in seen:
            errors.bad(line, f"question id {qid!r} appears twice")
            continue
        impossible = bool(qa.get("is_impossible", False))
        answers = _answers(qa.get("answers", []))
        if answers is None:
            errors.bad(line, f'question {qid!r}: answers must be [{{"text": str, "answer_start": int}}, ...]')
            continue
        if impossible:
            answers = []  # plausible answers, if any, are not references (official v2.0 evaluation)
        problem = None
        for answer in answers:
            start, answer_text = answer["answer_start"], answer["text"]
            if start == -1:
                text_only += 1
                continue
            if context[start : start + len(answer_text)] == answer_text:
                continue
            fixed = _nearest(context, answer_text, start, max_shift)
            if fixed is None:
                found = context[max(start, 0) : max(start, 0) + len(answer_text)]
                problem = (
                    f"question {qid!r}: answer {answer_text!r} does not match the context at "
                    f"answer_start {start}, which reads {found!r}"
                )
                break
            answer["answer_start"] = fixed
            moved += 1
        located = [a for a in answers if a["answer_start"] >= 0]
        if problem is None and answers and not located:
            problem = f"question {qid!r}: no answer is located in the context (all have answer_start -1)"
        if problem is not None:
            errors.bad(line, problem)
            continue
        if answers and answers[0]["answer_start"] < 0:
            answers.remove(located[0])
            answers.insert(0, located[0])
        seen.add(qid)
        examples.append(QAExample(qid, question, context, answers, impossible))
    if not examples and not errors.skipped:
        raise BertForgeError(f"{path} holds no questions")
    if moved or text_only:
        logger.info(
            "%s: moved %d answer span(s) by a few characters to match the context; kept %d text-only reference(s)",
            path,
            moved,
            text_only,
        )
    errors.finish(len(examples))
    return ReadResult(examples, errors.skipped)
