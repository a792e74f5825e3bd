"""Request and response bodies of the task API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

__all__ = [
    "PROBLEM_SCHEMAS",
    "TASK_KINDS",
    "TASK_REQUEST_BODY",
    "TASK_SCHEMA_DEFS",
    "DocumentSearchForm",
    "FieldError",
    "Problem",
    "SeedDocumentForm",
    "TaskAccepted",
    "TaskCreate",
    "TaskResultView",
    "TaskStatusView",
    "Text",
    "WebhookDeliveryView",
]
from asyncarch.sink_targets import MAX_URL_CHARS, parse_sink_url
from schemas.states import TaskState

MAX_TEXT_CHARS = 10_000
MAX_EMBED_TEXTS = 64

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimilarityInputs(_Strict):
    """The seed's item pair."""

    item_a: Text = Field(examples=["TV"])
    item_b: Text = Field(examples=["Samsung"])


class EmbedInputs(_Strict):
    """Texts to embed."""

    texts: list[Text] = Field(min_length=1, max_length=MAX_EMBED_TEXTS)


def _sink_url(url: str) -> str:
    parse_sink_url(url)  # a SinkUrlError is a ValueError: 422 naming the field
    return url


SinkUrl = Annotated[str, StringConstraints(max_length=MAX_URL_CHARS), AfterValidator(_sink_url)]
DELIVER_TO_HELP = (
    "Result sink written when the task reaches a terminal state: s3://bucket/prefix "
    "(object <prefix><task_id>.json) or ftp://host[:port]/path/ (file <task_id>.json there). "
    "422 unless the server's settings allow it; credentials are the server's."
)


class _TaskBase(_Strict):
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="Called when the task reaches a terminal state"
    )
    deliver_to: SinkUrl | None = Field(
        default=None, description=DELIVER_TO_HELP, examples=["s3://results/tasks/"]
    )


class SimilarityTask(_TaskBase):
    """Cosine similarity of two texts."""

    kind: Literal["similarity"]
    inputs: SimilarityInputs


class EmbedTask(_TaskBase):
    """Sentence embeddings of up to 64 texts."""

    kind: Literal["embed"]
    inputs: EmbedInputs


class DocumentSearchForm(_TaskBase):
    """Multipart fields of a document-search submission (the document is the ``file`` part)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["document-search"] = "document-search"
    query: Text
    top_k: int = Field(default=5, ge=1, le=50)
    file: str = Field(description="The uploaded document: .txt, .md or .pdf")


class SeedDocumentForm(DocumentSearchForm):
    """The seed's ``uploader/`` form with a document: ``item_a`` and ``item_b`` stand in for
    the query. Fields it does not know are ignored, as the seed ignored them."""

    model_config = ConfigDict(extra="ignore")

    item_a: Text | None = None
    item_b: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _items_as_query(cls, data: Any) -> Any:
        """No query: the document is searched for the items, joined by a space. A browser
        sends blank inputs as empty strings, which count as absent; ``kind`` is not one of
        the seed's fields, so it is ignored too."""
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if k != "kind" and (k not in _SEED_TEXTS or v != "")}
        items = [data[name] for name in ("item_a", "item_b") if isinstance(data.get(name), str)]
        if "query" not in data and items:
            data["query"] = " ".join(items)
        return data


_SEED_TEXTS = frozenset({"item_a", "item_b", "query"})


TaskCreate = Annotated[SimilarityTask | EmbedTask, Field(discriminator="kind")]
TASK_KINDS = frozenset({"similarity", "embed"})


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="For 422: each bad field")


class TaskLinks(BaseModel):
    """Where to follow the task."""

    self: str
    result: str


class TaskAccepted(BaseModel):
    """The answer to a submission: the task exists in Kafka."""

    task_id: str
    status: TaskState
    links: TaskLinks


class TaskError(BaseModel):
    """Why a task failed."""

    type: str
    message: str


class WebhookDeliveryView(BaseModel):
    """The delivery of a finished task's result: its webhook (``callback_url``), whose
    attempts are ``WEBHOOK`` entries of the task's history, or its sink (``deliver_to``),
    whose attempts are ``SINK`` entries."""

    delivery_id: str = Field(description="Sent as Asyncarch-Delivery on every attempt")
    event: str = Field(examples=["task.succeeded"])
    status: Literal["pending", "delivered", "failed", "refused"]
    attempts: int
    next_attempt_at: int | None = Field(description="Epoch milliseconds; null once settled")


class TaskStatusView(BaseModel):
    """A task's lifecycle state."""

    task_id: str
    kind: str | None
    status: TaskState
    attempt: int
    submitted_at: int | None = Field(description="Epoch milliseconds")
    updated_at: int | None = Field(description="Epoch milliseconds")
    progress: float | None
    error: TaskError | None
    history: list[dict[str, Any]]
    webhook: WebhookDeliveryView | None = None
    sink: WebhookDeliveryView | None = Field(default=None, description="Delivery to deliver_to")


class TaskResultView(BaseModel):
    """A finished task's output (or its error)."""

    task_id: str
    kind: str | None
    status: TaskState
    output: dict[str, Any] | None
    model: dict[str, Any] | None
    error: TaskError | None


# The JSON body's schema, with its definitions moved to the OpenAPI components.
_TASK_SCHEMA = TypeAdapter(TaskCreate).json_schema(ref_template="#/components/schemas/{model}")
TASK_SCHEMA_DEFS: dict[str, Any] = _TASK_SCHEMA.pop("$defs")

TASK_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": _TASK_SCHEMA},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["query", "file"],
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
                    "top_k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                    "callback_url": {"type": "string", "format": "uri"},
                    "deliver_to": {
                        "type": "string",
                        "maxLength": MAX_URL_CHARS,
                        "description": DELIVER_TO_HELP,
                    },
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A .txt, .md or .pdf document",
                    },
                },
            }
        },
    },
}

_PROBLEM_SCHEMA = TypeAdapter(Problem).json_schema(ref_template="#/components/schemas/{model}")
PROBLEM_SCHEMAS: dict[str, Any] = {**_PROBLEM_SCHEMA.pop("$defs"), "Problem": _PROBLEM_SCHEMA}
