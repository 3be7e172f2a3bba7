"""The HTTP API: thin routes over the service, with pydantic models at the edge."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Message

from app.service import MAX_QUESTION_CHARS, Sourcebook
from app.uploads import Upload
from ingest.errors import IngestError, UnsupportedFormat
from ingest.health import Concern
from retrieval.errors import AnswerNotKnown, DocumentNotFound, IndexMismatch, NameTaken, UploadTooLarge
from retrieval.files import disk_full
from retrieval.records import Answer, Citation
from retrieval.search import MAX_K

log = logging.getLogger(__name__)


# --- models ---------------------------------------------------------------------------
class ErrorResponse(BaseModel):
    """Every error: a message a person can act on."""

    error: str
    detail: list | None = None


class Health(BaseModel):
    status: Literal["ok"]
    documents: int
    chunks: int


class PlaceModel(BaseModel):
    """Where a passage or quote sits in its document (retrieval.records.Place), flat in a hit's or citation's JSON."""

    heading: str | None
    page: int | None
    line_start: int
    line_end: int


# Hits and citations keep their flat JSON, fields in the records' order. Pydantic takes a model's
# fields base by base starting from the last base, so a model names its bases last fields first.
class _Numbered(BaseModel):
    n: int


class _InDocument(BaseModel):
    chunk_id: str
    document_id: str
    source: str
    title: str


class HitModel(PlaceModel, _InDocument):
    start: int
    end: int
    text: str
    score: float


class CitationModel(PlaceModel, _InDocument, _Numbered):
    start: int
    end: int
    quote: str
    score: float
    url: str = Field(description="The chat page's link to the quote, relative to the server: /?doc=ID&start=N&end=M")
    cite: str = Field(description='The quote with its citation, to paste: "quote" (Title, § Section, p. 2, lines 4–5, source)')
    cite_markdown: str = Field(description="The same as Markdown, the title a link to the quote in the chat page")


# At least one character that is neither white space nor a control character nor half of a
# surrogate pair, spelled out so that every regex dialect reading the schema agrees on it.
HAS_TEXT = r"[^\s\x00-\x1f\x7f-\x9f\ufeff\ud800-\udfff]"
# Python's re, not pydantic's default engine, which refuses surrogate ranges.
TEXT_MODEL = ConfigDict(regex_engine="python-re")


AS_TYPED = "Read every word as typed: no misspelt word is read as the library's nearest"


class SearchRequest(BaseModel):
    model_config = TEXT_MODEL
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=HAS_TEXT)
    k: int = Field(default=5, ge=1, le=MAX_K)
    source: str | None = None
    as_typed: bool = Field(default=False, description=AS_TYPED)


class CorrectionModel(BaseModel):
    typed: str = Field(description="A word of the question (or query) as typed, in no passage and no English word")
    read_as: str = Field(description="The library's nearest word, which the question (or query) was read with")


class SearchResponse(BaseModel):
    query: str
    hits: list[HitModel]
    corrections: list[CorrectionModel] = Field(
        default_factory=list, description="Misspelt words of the query and how they were read (the hits are for the query so read)"
    )


class Turn(BaseModel):
    """An earlier turn of the conversation."""

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    # Not used to answer, but bounded like every text field: the body limit is not the only one.
    answer: str = Field(default="", max_length=20_000)


class AskRequest(BaseModel):
    model_config = TEXT_MODEL
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=HAS_TEXT)
    k: int = Field(default=5, ge=1, le=MAX_K)
    source: str | None = None
    history: list[Turn] = Field(default_factory=list, max_length=50)
    as_typed: bool = Field(default=False, description=AS_TYPED)


class AskResponse(BaseModel):
    question: str
    answer_id: str = Field(description="The answer's stable id (a hash of what it says): rate it with POST /api/feedback")
    answered: bool
    answer: str
    citations: list[CitationModel]
    passages: list[HitModel]
    corrections: list[CorrectionModel] = Field(
        default_factory=list, description="Misspelt words of the question and how they were read (the answer is to the question so read)"
    )


class HealthWarningModel(BaseModel):
    concern: Concern
    message: str
    pages: list[int]
    sections: list[str]


class DocumentHealthModel(BaseModel):
    """What the loader read of a document (characters of text per page of a PDF) and its warnings."""

    page_chars: list[int]
    warnings: list[HealthWarningModel]


class DocumentSummary(BaseModel):
    id: str
    title: str
    source: str
    size: int
    chunks: int
    updated: datetime
    # None for a document stored before health was kept (the next ingest reads it again).
    health: DocumentHealthModel | None = None


class SectionModel(BaseModel):
    heading: str
    start: int
    end: int
    level: int


class PageModel(BaseModel):
    number: int
    start: int
    end: int


class DocumentDetail(BaseModel):
    id: str
    title: str
    source: str
    text: str
    sections: list[SectionModel]
    pages: list[PageModel]


class UploadResultModel(BaseModel):
    filename: str
    status: Literal["added", "updated", "unchanged", "failed"]
    document_id: str | None = None
    reason: str | None = None


class UploadResponse(BaseModel):
    results: list[UploadResultModel]


class DeleteResponse(BaseModel):
    id: str
    chunks_removed: int
    title: str | None = None
    source: str | None = None
    kept_as: str | None = Field(
        default=None,
        description="Where the file was kept, relative to the corpus folder (POST /api/deleted/{id}/restore brings it back)",
    )


ANSWER_ID = r"^[0-9a-f]{16}$"


class FeedbackRequest(BaseModel):
    """A rating of an answer: by its `answer_id` alone (an answer this server gave lately), or with
    the answer as /api/ask returned it (`question`, `answer`, `answered`, `citations`)."""

    model_config = TEXT_MODEL
    answer_id: str | None = Field(default=None, pattern=ANSWER_ID)
    question: str | None = Field(default=None, min_length=1, max_length=MAX_QUESTION_CHARS, pattern=HAS_TEXT)
    answer: str | None = Field(default=None, max_length=20_000)
    answered: bool | None = None
    citations: list[CitationModel] | None = Field(default=None, max_length=50)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=5000, description="Omitted: the answer keeps its comment")

    @model_validator(mode="after")
    def _names_an_answer(self) -> FeedbackRequest:
        if self.answer_id is None and (self.question is None or self.answer is None):
            raise ValueError("give the answer_id of an answer, or its question and answer")
        return self


class FeedbackResponse(BaseModel):
    id: int
    answer_id: str | None = None
    rating: Literal["up", "down"] | None = None
    comment: str | None = None


class FeedbackCitation(BaseModel):
    n: int | None = None
    document_id: str
    source: str
    title: str
    heading: str | None = None
    page: int | None = None
    start: int
    end: int
    quote: str
    cite: str


class FeedbackRecord(BaseModel):
    id: int
    created: float
    question: str
    answer: str
    rating: Literal["up", "down"]
    comment: str
    updated: float | None = None
    answer_id: str | None = Field(default=None, description="None for ratings stored before answers had ids")
    answered: bool | None = None
    citations: list[FeedbackCitation] = Field(default_factory=list)


class NearDocumentModel(BaseModel):
    document_id: str
    title: str
    source: str
    times: int = Field(description="How many of the gap's askings had a passage of it among the nearest")


class GapModel(BaseModel):
    question: str = Field(description="The wording asked most")
    count: int
    questions: list[str]
    first_asked: float
    last_asked: float
    documents: list[NearDocumentModel]


class DeletedModel(BaseModel):
    id: str = Field(description="This kept file's id")
    document_id: str = Field(description="The id the document had, and has again once restored")
    name: str = Field(description="Where it was in the corpus folder")
    kept_as: str = Field(description="Where it is kept, relative to the corpus folder")
    set_aside: float
    size: int
    name_taken: bool = Field(description="A file of its name is in the corpus folder now: a restore would be refused")


class RestoreResponse(BaseModel):
    id: str = Field(description="The restored document's id")
    title: str
    source: str
    name: str
    restored_from: str
    chunks: int


class Unauthorized(Exception):
    """A change was asked for without the configured API token."""


# --- routes ---------------------------------------------------------------------------
# Every route answers bad input with ErrorResponse, not FastAPI's default validation shape:
# 422 when the request does not fit its model, 400 when the service refuses a value.
router = APIRouter(responses={400: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})

def service_of(request: Request) -> Sourcebook:
    """The one service the app was built with."""
    return request.app.state.service


def require_token(request: Request) -> None:
    """Refuse the request unless it carries the configured API token (when one is configured)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if not service_of(request).token_accepted(value if scheme.lower() == "bearer" else None):
        raise Unauthorized()


@router.get("/healthz", response_model=Health)
def health(request: Request) -> Health:
    documents, chunks = service_of(request).counts()
    return Health(status="ok", documents=documents, chunks=chunks)


# Routes that run the model are plain `def`: FastAPI runs them in its thread pool, so one
# slow question never blocks the event loop or the other users.
@router.post("/api/search", response_model=SearchResponse, responses={422: {"model": ErrorResponse}})
def search(body: SearchRequest, request: Request) -> SearchResponse:
    found = service_of(request).search(body.query, k=body.k, source=body.source, as_typed=body.as_typed)
    return SearchResponse.model_validate(found.to_dict())


@router.post("/api/ask", response_model=AskResponse, responses={422: {"model": ErrorResponse}})
def ask(body: AskRequest, request: Request) -> AskResponse:
    answer = service_of(request).ask(
        body.question, k=body.k, source=body.source, history=[turn.question for turn in body.history],
        as_typed=body.as_typed,
    )
    return AskResponse.model_validate(answer.to_dict())


@router.get("/api/documents", response_model=list[DocumentSummary])
def list_documents(request: Request) -> list[DocumentSummary]:
    return [
        DocumentSummary(id=d.id, title=d.title, source=d.source, size=d.size, chunks=d.chunks,
                        updated=datetime.fromtimestamp(d.updated, tz=timezone.utc),
                        health=DocumentHealthModel.model_validate(d.health.to_dict()) if d.health else None)
        for d in service_of(request).documents()
    ]


@router.get("/api/documents/{document_id}", response_model=DocumentDetail, responses={404: {"model": ErrorResponse}})
def get_document(document_id: str, request: Request) -> DocumentDetail:
    document = service_of(request).document(document_id)
    return DocumentDetail(
        id=document.id,
        title=document.title,
        source=document.source,
        text=document.text,
        sections=[SectionModel(heading=s.heading, start=s.start, end=s.end, level=s.level) for s in document.sections],
        pages=[PageModel(number=p.number, start=p.start, end=p.end) for p in document.pages],
    )


# Room in an upload's request body for the multipart framing around its files: a boundary and
# a few headers per file, a few hundred bytes each.
FORM_FRAMING_BYTES = 64 * 1024


class UploadRoute(APIRoute):
    """The upload route, guarded before its body is read.

    FastAPI reads a whole form (spooling its files to disk) before it runs dependencies or the
    route, so the token and the size are checked here first: no token, or a body over the
    upload limit (its Content-Length, or the bytes counted as they arrive when it has none),
    and the request is refused without being stored anywhere.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            require_token(request)
            settings = service_of(request).settings
            limit = settings.max_upload_bytes + FORM_FRAMING_BYTES
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _body_too_large(f"is {int(declared):,} bytes", int(declared), settings.max_upload_bytes)
            received = 0

            async def receive_counted() -> Message:
                nonlocal received
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > limit:
                    raise _body_too_large(f"is at least {received:,} bytes", received, settings.max_upload_bytes)
                return message

            try:
                return await handle(Request(request.scope, receive_counted))
            except StarletteHTTPException as error:
                # FastAPI reports any failure while reading a form as a 400: say what it was.
                if isinstance(error.__cause__, UploadTooLarge):
                    raise error.__cause__ from None
                raise

        return guarded


def _body_too_large(measured: str, size: int, limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the upload's request body {measured}, over the {limit:,}-byte limit per upload", size=size, limit=limit
    )


async def upload_documents(
    request: Request, files: Annotated[list[UploadFile], File(min_length=1)]
) -> UploadResponse:
    """Save and ingest the uploaded files; a result per file (the token and body size are checked by UploadRoute)."""
    service = service_of(request)
    # The form's files are on disk by now, their sizes known: the service refuses too many, too
    # big together, one too big or none of a type it reads, before any is read in.
    uploads = [Upload(upload.filename or "", upload.size or 0, upload.file.read) for upload in files]
    service.check_upload(uploads, refuse_large_files=True, refuse_unsupported=True)
    # Ingest reads and embeds: off the event loop, like the model-bound routes.
    results = await run_in_threadpool(service.upload, uploads)
    return UploadResponse(results=[UploadResultModel(**asdict(r)) for r in results])


router.add_api_route(
    "/api/documents",
    upload_documents,
    methods=["POST"],
    response_model=UploadResponse,
    responses={400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
               415: {"model": ErrorResponse}, 507: {"model": ErrorResponse}},
    route_class_override=UploadRoute,
)


@router.delete(
    "/api/documents/{document_id}",
    response_model=DeleteResponse,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 507: {"model": ErrorResponse}},
    dependencies=[Depends(require_token)],
)
def delete_document(document_id: str, request: Request) -> DeleteResponse:
    deletion = service_of(request).delete_document(document_id)
    return DeleteResponse(id=document_id, chunks_removed=deletion.chunks_removed, title=deletion.title,
                          source=deletion.source, kept_as=deletion.kept_as)


@router.get(
    "/api/deleted",
    response_model=list[DeletedModel],
    responses={401: {"model": ErrorResponse}},
    dependencies=[Depends(require_token)],
)
def list_deleted(request: Request) -> list[DeletedModel]:
    return [DeletedModel(**kept.to_dict()) for kept in service_of(request).deleted()]


@router.post(
    "/api/deleted/{kept_id}/restore",
    response_model=RestoreResponse,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 409: {"model": ErrorResponse},
               507: {"model": ErrorResponse}},
    dependencies=[Depends(require_token)],
)
def restore_deleted(kept_id: str, request: Request) -> RestoreResponse:
    """Move a deleted document's file back (by the document's id, or a kept file's id) and index it again."""
    restored = service_of(request).restore(kept_id)
    return RestoreResponse(id=restored.document_id, title=restored.title, source=restored.source,
                           name=restored.name, restored_from=restored.restored_from, chunks=restored.chunks)


@router.post("/api/feedback", response_model=FeedbackResponse,
             responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
    service = service_of(request)
    if body.question is None or body.answer is None:
        record = service.rate(body.answer_id, body.rating, comment=body.comment)
    elif body.answer_id is None and body.citations is None and body.answered is None:
        # The answer by its text alone, as before answers had ids.
        record = service.rate_text(body.question, body.answer, body.rating, comment=body.comment)
    else:
        answer = _answer_of(body)
        if body.answer_id is not None and body.answer_id != answer.id:
            raise ValueError(f"answer_id {body.answer_id!r} is not the id of the question, answer and citations sent "
                             f"({answer.id!r}): send them as /api/ask returned them")
        record = service.rate(answer, body.rating, comment=body.comment)
    return FeedbackResponse(id=record["id"], answer_id=record["answer_id"], rating=record["rating"],
                            comment=record["comment"])


def _answer_of(body: FeedbackRequest) -> Answer:
    """The answer a rating sends back, as the service's record (the link and texts to paste are derived again)."""
    citations = tuple(Citation.from_dict(citation.model_dump()) for citation in body.citations or ())
    answered = body.answered if body.answered is not None else bool(citations)
    return Answer(question=body.question, answered=answered, answer=body.answer, citations=citations)


@router.get(
    "/api/feedback",
    response_model=list[FeedbackRecord],
    responses={401: {"model": ErrorResponse}},
    dependencies=[Depends(require_token)],
)
def export_feedback(request: Request) -> list[FeedbackRecord]:
    return [FeedbackRecord(**row) for row in service_of(request).feedback()]


# Which questions people asked is as private as their ratings: the same token as the feedback export.
@router.get(
    "/api/gaps",
    response_model=list[GapModel],
    responses={401: {"model": ErrorResponse}},
    dependencies=[Depends(require_token)],
)
def list_gaps(request: Request) -> list[GapModel]:
    """The questions the documents did not answer, grouped by meaning, most asked first (model-bound: a thread)."""
    return [GapModel(**gap.to_dict()) for gap in service_of(request).gaps()]


# --- errors, mapped to status codes in one place -----------------------------------------
DISK_FULL = "the server's disk is full: nothing half-written was kept; free some space and try again"

# The project's exceptions whose message is the answer, and their status. An exception takes the
# status of its nearest class here (UploadTooLarge is a ValueError, UnsupportedFormat an IngestError).
STATUS_OF: dict[type[Exception], int] = {
    ValueError: 400,
    UploadTooLarge: 413,
    DocumentNotFound: 404,
    IngestError: 400,
    UnsupportedFormat: 415,
    IndexMismatch: 409,
    NameTaken: 409,
    AnswerNotKnown: 404,
}


def _mapped_class(error: Exception) -> type[Exception]:
    """The nearest class of `error` that STATUS_OF maps, as Starlette picks a handler."""
    return next(cls for cls in type(error).__mro__ if cls in STATUS_OF)


def _error(status: int, message: str, detail: list | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=ErrorResponse(error=message, detail=detail).model_dump())


def _explain(problem: dict) -> str:
    """Say what was wrong in a person's words where pydantic's are obscure."""
    if problem.get("type") == "string_pattern_mismatch" and problem.get("ctx", {}).get("pattern") == HAS_TEXT:
        return "must contain some text"
    return problem["msg"]


def install_error_handlers(app: FastAPI) -> None:
    """Map the project's exceptions to JSON errors with the right status."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {_explain(e)}" for e in error.errors()]
        return _error(422, "invalid request: " + "; ".join(problems), detail=[str(p) for p in problems])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body it cannot parse, an unknown route) in the same shape.
        response = _error(error.status_code, str(error.detail))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, error: Unauthorized) -> JSONResponse:
        response = _error(401, "this needs the API token: send 'Authorization: Bearer <token>'")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def mapped(request: Request, error: Exception) -> JSONResponse:
        return _error(STATUS_OF[_mapped_class(error)], str(error))

    for error_class in STATUS_OF:
        app.add_exception_handler(error_class, mapped)

    async def file_or_store_failed(request: Request, error: OSError | sqlite3.OperationalError) -> JSONResponse:
        """A file or the store could not be read or written: 507 when the disk is full, else 500."""
        if disk_full(error):
            log.error("disk full during %s %s: %s", request.method, request.url.path, error)
            return _error(507, DISK_FULL)
        # Any other failure: logged in full, answered without server paths.
        if isinstance(error, sqlite3.OperationalError):
            log.error("store error during %s %s", request.method, request.url.path, exc_info=error)
            return _error(500, "the document store could not be read or written; see the server's log")
        log.error("file system error during %s %s", request.method, request.url.path, exc_info=error)
        return _error(500, f"the server could not read or write a file ({error.strerror or type(error).__name__})")

    app.add_exception_handler(OSError, file_or_store_failed)
    app.add_exception_handler(sqlite3.OperationalError, file_or_store_failed)
