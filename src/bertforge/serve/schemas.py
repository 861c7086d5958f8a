"""Request and response bodies (pydantic), which FastAPI validates and documents at /docs.

Texts are ``str`` or a list of ``str``; numbers, nulls or nested lists where a text belongs are
answered 422 by the validation, and empty texts or too many texts by the app (it knows the limit).
Responses are documented here and built as plain dicts (not validated again: a request of 256
embeddings would otherwise spend longer in validation than in the model).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Texts = str | list[str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


# ----------------------------------------------------------------------------------- requests
class EmbedRequest(_Strict):
    inputs: Texts = Field(
        description="a text or a list of texts", examples=[["A first sentence.", "Another one."]]
    )


class OpenAIEmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request; ``model`` is reported back, any value is accepted."""

    model_config = ConfigDict(extra="ignore")  # OpenAI clients may send ``user`` and other fields
    input: Texts = Field(description="a text or a list of texts (token-id inputs are not supported)")
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"


class ClassifyRequest(_Strict):
    inputs: Texts = Field(examples=[["what a good film", "a bad plot"]])
    pairs: Texts | None = Field(
        default=None, description="second segments, one per input (for pair tasks such as NLI)"
    )
    top_k: int | None = Field(default=1, ge=1, description="labels per input, best first; null: all")


class NerRequest(_Strict):
    inputs: Texts = Field(examples=["john smith lives in paris"])


class QARequest(_Strict):
    question: Texts = Field(description="a question, or a list (one per context)")
    context: Texts = Field(description="a context, or a list (one per question)")
    top_k: int = Field(default=1, ge=1, le=20, description="answers in each n_best list")


class FillMaskRequest(_Strict):
    inputs: Texts = Field(
        description="text(s) with [MASK] (or <mask>)", examples=["Paris is the [MASK] of France."]
    )
    top_k: int = Field(default=5, ge=1, le=100)


class TokenizeRequest(_Strict):
    inputs: Texts
    pairs: Texts | None = None
    add_special_tokens: bool = True


# ---------------------------------------------------------------------------------- responses
class EmbedResponse(BaseModel):
    model: str
    dimensions: int
    embeddings: list[list[float]]


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class LabelScore(BaseModel):
    label: str
    score: float


class ClassifyResponse(BaseModel):
    results: list[list[LabelScore]] = Field(description="per input, labels best first")


class Entity(BaseModel):
    type: str
    text: str
    start: int
    end: int
    score: float


class NerResponse(BaseModel):
    results: list[list[Entity]]


class Answer(BaseModel):
    text: str
    start: int
    end: int
    score: float
    logit: float


class QAResult(BaseModel):
    answer: Answer
    n_best: list[Answer]
    null_score_diff: float | None = None


class QAResponse(BaseModel):
    results: list[QAResult]


class MaskCandidate(BaseModel):
    token: str
    token_id: int
    score: float
    sequence: str


class FillMaskResponse(BaseModel):
    results: list[list[list[MaskCandidate]]] = Field(description="per input, per mask, candidates best first")


class TokenizeResult(BaseModel):
    tokens: list[str]
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int]]


class TokenizeResponse(BaseModel):
    results: list[TokenizeResult]


class ErrorResponse(BaseModel):
    error: str
    error_type: str


class HealthResponse(BaseModel):
    status: str
