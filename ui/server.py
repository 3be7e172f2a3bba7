"""One server: the HTTP API under /api and the chat page at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.service import Sourcebook
from ui.api import install_error_handlers, router
from ui.guard import RequestGuard

# Questions run the model for tens of milliseconds each; two cores serve about that many at
# once, and the rest wait in Gradio's queue rather than pile up threads.
PAGE_CONCURRENCY = 4


def create_app(service: Sourcebook, *, with_page: bool = True) -> FastAPI:
    """Build the FastAPI app over a loaded service, with the chat page mounted at /."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once serving starts (not earlier, when it would compete with loading the model and
        # the page for the disk), read the memory-mapped vector index into memory in the background.
        service.library.warm()
        yield

    app = FastAPI(
        title="sourcebook",
        description="Answers questions about your documents with verbatim, cited passages.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    install_error_handlers(app)
    app.include_router(router)
    if with_page:
        # Imported here: Gradio takes seconds to import, and the API alone does not need it.
        import gradio as gr

        from ui.web import build_page, page_theme

        page = build_page(service).queue(default_concurrency_limit=PAGE_CONCURRENCY)
        # Gradio's own upload endpoint refuses a file over the per-file limit as it streams in,
        # before it is stored in Gradio's cache (the page's handler then never sees it).
        app = gr.mount_gradio_app(
            app, page, path="/", max_file_size=service.settings.max_file_bytes, theme=page_theme()
        )
        # Gradio checks that a file named in an event was uploaded (is in its upload folder) only
        # once `launch()` has set has_launched; a mounted app is never launched, so say it is.
        page.has_launched = True
    # Outermost, so cross-site writes, oversized bodies and server paths are refused before
    # Gradio (its CORS middleware and file handling included) or a route sees them.
    app.add_middleware(RequestGuard, settings=service.settings)
    return app
