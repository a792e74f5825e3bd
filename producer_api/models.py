"""Request and response bodies of the task API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["TASK_KINDS", "TaskAccepted", "TaskCreate", "TaskResultView", "TaskStatusView"]

MAX_TEXT_CHARS = 10_000
MAX_EMBED_TEXTS = 64

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
TaskState = Literal["PENDING", "RUNNING", "RETRYING", "SUCCESS", "FAILED", "CANCELLED"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimilarityInputs(_Strict):
    """The seed's item pair."""

    item_a: Text = Field(examples=["TV"])
    item_b: Text = Field(examples=["Samsung"])


class EmbedInputs(_Strict):
    """Texts to embed."""

    texts: list[Text] = Field(min_length=1, max_length=MAX_EMBED_TEXTS)


class _TaskBase(_Strict):
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="Called when the task reaches a terminal state"
    )


class SimilarityTask(_TaskBase):
    """Cosine similarity of two texts."""

    kind: Literal["similarity"]
    inputs: SimilarityInputs


class EmbedTask(_TaskBase):
    """Sentence embeddings of up to 64 texts."""

    kind: Literal["embed"]
    inputs: EmbedInputs


TaskCreate = Annotated[SimilarityTask | EmbedTask, Field(discriminator="kind")]
TASK_KINDS = frozenset({"similarity", "embed"})


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


class TaskResultView(BaseModel):
    """A finished task's output (or its error)."""

    task_id: str
    kind: str | None
    status: TaskState
    output: dict[str, Any] | None
    model: dict[str, Any] | None
    error: TaskError | None
