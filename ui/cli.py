"""The command line: ingest, search, ask, docs, eval and chat, over the one service."""

from __future__ import annotations

import json
import logging
import random
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from app.export import conversation_markdown
from ingest.errors import IngestError
from ingest.health import DocumentHealth
from retrieval.errors import DocumentNotFound, IndexMismatch, NameTaken
from retrieval.reader import ReaderUnavailable
from retrieval.records import Answer, Hit, reference
from retrieval.settings import Settings

app = typer.Typer(help="Answers questions about your documents with verbatim, cited passages.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

IndexOption = Annotated[Optional[Path], typer.Option("--index", help="Index directory (default .sourcebook).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of readable text.")]
KOption = Annotated[int, typer.Option("--k", "-k", help="How many passages, 1 to 50.")]
SourceOption = Annotated[Optional[str], typer.Option("--source", help="Only passages from this source.")]
AsTypedOption = Annotated[bool, typer.Option(
    "--as-typed", help="Read every word as typed: no misspelt word is read as the library's nearest."
)]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False) -> None:
    """sourcebook: ask your documents."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
    )


def settings_for(index: Path | None, corpus: Path | None = None) -> Settings:
    """Build the settings once, at the edge; --index and --corpus override the environment."""
    overrides = {"index_dir": index, "corpus_dir": corpus}
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


@contextmanager
def failures_as_messages():
    """Turn expected failures into one line on stderr and a non-zero exit."""
    try:
        yield
    except (ValueError, IndexMismatch, DocumentNotFound, FileNotFoundError, IngestError, ReaderUnavailable,
            NameTaken) as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2 if isinstance(error, ValueError) else 1) from error


def require_free_port(host: str, port: int) -> None:
    """Stop with a hint, before anything loads, when another program already listens on the port."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            err.print(
                f"[red]error:[/red] cannot listen on {escape(host)}:{port} ({escape(error.strerror or str(error))}): "
                f"another server may be running there; stop it or choose another port (--port, or make run PORT=...)",
                soft_wrap=True,
            )
            raise typer.Exit(1) from error


def open_service(index: Path | None, *, rebuild: bool = False, embed_again: bool = False, corpus: Path | None = None):
    """Open the service (loads the model once); a store SQLite cannot read is one line saying how to rebuild it.
    `embed_again` (ingest): a library another model embedded is embedded again with this one."""
    import sqlite3

    from retrieval.library import STORE_FILE
    from app.service import Sourcebook

    settings = settings_for(index, corpus)
    try:
        return Sourcebook(settings, rebuild=rebuild, embed_again=embed_again)
    except sqlite3.DatabaseError as error:
        store = settings.index_dir / STORE_FILE
        # --rebuild starts the store afresh, so the corpus folder (the source of truth) refills it.
        err.print(
            f"[red]error:[/red] {escape(str(store))} is not a readable index store ({escape(str(error))}); rebuild it "
            f"from the corpus folder with `sourcebook ingest CORPUS --index {escape(str(settings.index_dir))} --rebuild`",
            soft_wrap=True,
        )
        raise typer.Exit(1) from error


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A file or folder of documents.")] = Path("corpus"),
    index: IndexOption = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Start the index afresh (after a settings change); ratings and declined questions are kept."
    )] = False,
    use_ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Read, cut up and embed the files on Ray (pip install 'sourcebook[ray]'): on a local Ray "
            "runtime of 2 CPUs, or on the cluster given by --ray-address.",
        ),
    ] = False,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="Join the Ray cluster at ADDRESS (HOST:PORT of the head, as `ray start --head` prints it) "
            "instead of starting a local runtime; implies --ray. Every node must see PATH at the same path.",
        ),
    ] = None,
    ray_actors: Annotated[
        int, typer.Option("--ray-actors", min=1, help="With --ray: embedding actors, each loading the model once.")
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Ingest new and changed files under PATH; drop the ones that disappeared.

    `sourcebook ingest PATH --ray` runs the same ingest as a Ray Data pipeline on this machine;
    `--ray-address HOST:PORT` runs it on a Ray cluster (docs/SCALING.md).
    """
    with failures_as_messages():
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if ray_actors != 1 and not (use_ray or ray_address):
            raise ValueError(f"--ray-actors {ray_actors} needs --ray or --ray-address")
        service = open_service(index, rebuild=rebuild, embed_again=True)
        with ingest_progress(quiet=as_json) as progress:
            try:
                report = service.ingest(
                    path,
                    progress=progress,
                    use_ray=use_ray,
                    ray_address=ray_address,
                    ray_actors=ray_actors,
                )
            except (ImportError, ConnectionError) as error:
                # Ray missing, or no cluster at the address given.
                err.print(f"[red]error:[/red] {escape(str(error))}")
                raise typer.Exit(1) from error
    if as_json:
        payload = {
            **report.summary(),
            "files": {"added": report.added, "updated": report.updated, "removed": report.removed,
                      "unchanged": report.unchanged},
            "failures": [{"source": s, "reason": r} for s, r in report.failed],
            "windows_embedded": report.windows_embedded,
        }
        out.print_json(json.dumps(payload))
    else:
        for source, reason in report.failed:
            err.print(f"[yellow]skipped[/yellow] {escape(source)}: {escape(reason)}")
        counts = ", ".join(f"{n} {what}" for what, n in report.summary().items())
        documents, chunks = service.counts()
        out.print(
            f"{counts}. Embedded {report.windows_embedded} new texts, reused {report.windows_reused}; "
            f"the index holds {documents} documents, {chunks} passages."
        )
    if report.failed and not (report.added or report.updated or report.unchanged):
        raise typer.Exit(1)


# Seconds between progress lines when standard error is not a terminal (a log, `make run` piped).
PROGRESS_LINE_EVERY = 2.0


@contextmanager
def ingest_progress(*, quiet: bool):
    """Yield the callback an ingest reports (files done, total, file read) to: a bar on a terminal, else plain lines.

    Until the first report the model is being loaded (the first run exports it), so the bar says
    that instead of an unlabelled "0/?".
    """
    if quiet:
        yield None
        return
    if not err.is_terminal:
        last = {"at": 0.0, "line": ""}

        def line(done: int, total: int, current: str | None = None) -> None:
            now, text = time.monotonic(), f"ingest: {done}/{total} files"
            # The end is always told, once; the embedding and the ingest both report it.
            if text != last["line"] and (done == total or now - last["at"] >= PROGRESS_LINE_EVERY):
                last.update(at=now, line=text)
                err.print(text, soft_wrap=True)

        err.print("ingest: loading the embedding model (the first run exports it)", soft_wrap=True)
        yield line
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=True,
    ) as bar:
        task = bar.add_task("loading the embedding model (the first run exports it)", total=None)

        def advance(done: int, total: int, current: str | None = None) -> None:
            # The bar is one line: the file being read is named by its last part.
            reading = f"ingesting {escape(Path(current).name)}" if current else "ingesting"
            bar.update(task, description=reading, completed=done, total=total)

        yield advance


def print_hits(hits: list[Hit], *, heading: str | None = None) -> None:
    """Print passages readably: where each comes from, then its text."""
    if heading:
        out.print(f"[bold]{heading}[/bold]")
    for rank, hit in enumerate(hits, start=1):
        out.print(f"[cyan]{rank}.[/cyan] {escape(reference(hit))}  [dim]score {hit.score:.3f}[/dim]")
        out.print(f"   {escape(hit.text)}\n")


def print_answer(answer: Answer) -> None:
    """Print an answer with its numbered citations, or the abstention with passages to see."""
    if answer.corrections:
        out.print(f"[dim]{escape(answer.reading())}[/dim]")
    if not answer.answered:
        out.print(f"[yellow]{escape(answer.answer)}[/yellow]\n")
        print_hits(list(answer.passages), heading="See also")
        return
    out.print(f"{escape(answer.answer)}\n")
    # Each citation as a reader would paste it: the quote, then where it is.
    for citation in answer.citations:
        out.print(f"[cyan][{citation.n}][/cyan] {escape(citation.cite())}")
        out.print(f"    [dim]chars {citation.start}-{citation.end}[/dim]")


def emit_answer(answer: Answer, *, as_json: bool) -> None:
    """Print one answer: a JSON line, or the readable form."""
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
    else:
        print_answer(answer)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: KOption = 5,
    source: SourceOption = None,
    index: IndexOption = None,
    as_json: JsonOption = False,
    as_typed: AsTypedOption = False,
) -> None:
    """Print the passages that best match QUERY."""
    with failures_as_messages():
        service = open_service(index)
        found = service.search(query, k=k, source=source, as_typed=as_typed)
    if as_json:
        print(json.dumps(found.to_dict(), ensure_ascii=False))
    else:
        if found.corrections:
            out.print(f"[dim]{escape(found.reading())}[/dim]")
        print_hits(list(found.hits))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question, or - to read one per line from standard input.")],
    k: KOption = 5,
    source: SourceOption = None,
    index: IndexOption = None,
    as_json: JsonOption = False,
    as_markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print Markdown as the page exports it: questions, answers, quotes with citations and links."
    )] = False,
    link_base: Annotated[str, typer.Option(
        "--link-base", help="The chat page's address (https://host:port) that Markdown links start with."
    )] = "",
    as_typed: AsTypedOption = False,
) -> None:
    """Answer QUESTION with quoted, cited sentences, or say the documents do not."""
    if link_base and not link_base.startswith(("http://", "https://")):
        raise typer.BadParameter(f"must start with http:// or https://, got {link_base!r}", param_hint="--link-base")
    base = link_base.rstrip("/")
    with failures_as_messages():
        service = open_service(index)
        if question != "-":
            answer = service.ask(question, k=k, source=source, as_typed=as_typed)
            if as_markdown:
                print(conversation_markdown([answer], base=base), end="")
            else:
                emit_answer(answer, as_json=as_json)
            return
    # One question per line, one JSON object (or readable answer) per line, one model load;
    # as Markdown, one document of them all at the end.
    failed, answers = False, []
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = service.ask(line, k=k, source=source, as_typed=as_typed)
        except ValueError as error:
            failed = True
            print(json.dumps({"question": line.rstrip("\n"), "error": str(error)}, ensure_ascii=False), flush=True,
                  file=sys.stderr if as_markdown else sys.stdout)
            continue
        if as_markdown:
            answers.append(answer)
        elif as_json:
            emit_answer(answer, as_json=True)
        else:
            # Many answers in a row: each under the question it answers.
            out.print(f"[bold]Q: {escape(answer.question)}[/bold]")
            print_answer(answer)
    if as_markdown:
        print(conversation_markdown(answers, base=base), end="")
    if failed:
        raise typer.Exit(2)


@app.command()
def docs(index: IndexOption = None, as_json: JsonOption = False) -> None:
    """List the documents in the index."""
    with failures_as_messages():
        service = open_service(index)
        documents = service.documents()
    if as_json:
        print(json.dumps([{"id": d.id, "title": d.title, "source": d.source, "size": d.size, "chunks": d.chunks,
                           "updated": d.updated, "health": d.health.to_dict() if d.health else None}
                          for d in documents], ensure_ascii=False))
        return
    # At 80 columns a path folds onto more lines rather than losing its end to an ellipsis.
    table = Table(Column("id", no_wrap=True), Column("title", ratio=3), Column("source", overflow="fold", ratio=2),
                  Column("size", justify="right", no_wrap=True), Column("passages", justify="right", no_wrap=True),
                  Column("!", justify="right", no_wrap=True))
    for d in documents:
        table.add_row(d.id, escape(d.title), escape(d.source), f"{d.size:,}", str(d.chunks), _warning_mark(d.health))
    out.print(table)
    # Below the table, whole sentences: what each marked document's warnings say, and PDFs' text per page.
    for d in documents:
        for line in _health_lines(d.health):
            out.print(f"{escape(d.source)}: {escape(line)}", overflow="fold")


def _warning_mark(health: DocumentHealth | None) -> str:
    """The `!` column: how many warnings, "?" when the document was stored before health was kept."""
    if health is None:
        return "?"
    return str(len(health.warnings)) if health.warnings else ""


def _health_lines(health: DocumentHealth | None) -> list[str]:
    """A document's health for people: characters of text per page (PDFs; --json has every page), then each warning."""
    if health is None:
        return ["not checked yet (stored by an older version): run `sourcebook ingest` on its folder"]
    pages = health.pages_line()
    return ([pages] if pages else []) + [f"! {warning.message}" for warning in health.warnings]


@app.command("eval")
def evaluate(
    qa: Annotated[Optional[Path], typer.Argument(help="QA JSON-lines file.")] = None,
    beir: Annotated[Optional[Path], typer.Option("--beir", help="A BEIR-layout benchmark folder instead.")] = None,
    squad: Annotated[Optional[Path], typer.Option("--squad", help="A SQuAD JSON file instead: its articles in a temporary library.")] = None,
    split: Annotated[str, typer.Option("--split", help="BEIR qrels split.")] = "test",
    run_out: Annotated[Optional[Path], typer.Option("--run-out", help="Write the hybrid ranking as a TREC run.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Also find the abstention threshold these questions favour.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Ask only this many questions (a seeded sample).")] = None,
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure retrieval, answers and abstention on QA or SQuAD, or nDCG/recall/MRR on a BEIR set."""
    with failures_as_messages():
        if [beir, squad, qa].count(None) != 2:
            raise ValueError("give one of: a QA file, --beir DIR, --squad FILE")
        if beir is not None:
            results = _eval_beir(beir, split, run_out, index)
        elif squad is not None:
            results = _eval_squad(squad, index, calibrate=calibrate, limit=limit)
        else:
            from retrieval import evaluation

            results = _eval_questions(_open_with, evaluation.load_qa(qa), index, calibrate=calibrate, limit=limit)
    if as_json:
        print(json.dumps(results))
        return
    if beir is not None:
        table = Table("ranking", *next(iter(results["modes"].values())).keys(), title=f"{beir} ({split})")
        for mode, figures in results["modes"].items():
            table.add_row(mode, *(f"{v:.4f}" for v in figures.values()))
    else:
        table = Table("measure", "value", title=str(qa or squad))
        for name, value in results.items():
            shown = f"{value:.4f}" if isinstance(value, float) else "no such questions" if value is None else str(value)
            table.add_row(name, shown)
    out.print(table)


def _eval_questions(open_library, items: list, index: Path | None, *, calibrate: bool, limit: int | None) -> dict:
    """Ask the questions and score them; with `calibrate`, also the threshold they favour and its figures.

    `open_library(index, **settings)` opens the service to ask. Calibrating asks with abstention
    off, so every question's best score is seen, and reports the figures at the configured
    threshold from the same run.
    """
    from retrieval import evaluation

    if limit is not None and limit < len(items):
        items = random.Random(0).sample(items, limit)
    if not calibrate:
        service = open_library(index)
        report, _ = evaluation.evaluate_qa(lambda q: service.ask(q, k=10, log_declined=False), items)
        return report.to_dict()
    service = open_library(index, abstain_below=0.0)
    configured = settings_for(index).abstain_below
    _, outcomes = evaluation.evaluate_qa(lambda q: service.ask(q, k=10, log_declined=False), items)
    results = evaluation.score_qa(evaluation.with_threshold(outcomes, configured)).to_dict()
    for name, threshold in (
        ("balanced", evaluation.calibrate_threshold(outcomes)),
        ("at_most_5pc_wrong", evaluation.calibrate_threshold(outcomes, max_wrong_declines=0.05)),
    ):
        fitted = evaluation.score_qa(evaluation.with_threshold(outcomes, threshold))
        results |= {
            f"{name}_threshold": threshold,
            f"{name}_answer_hit_rate": fitted.answer_hit_rate,
            f"{name}_declined_unanswerable": fitted.declined_unanswerable,
            f"{name}_declined_answerable": fitted.declined_answerable,
        }
    err.print(f"figures above are at the configured threshold {configured}; set SOURCEBOOK_ABSTAIN_BELOW to use another")
    return results


def _open_with(index: Path | None, **overrides):
    """Open the service with some settings changed (as the environment could)."""
    from app.service import Sourcebook

    return Sourcebook(settings_for(index).model_copy(update=overrides))


def _eval_squad(path: Path, index: Path | None, *, calibrate: bool, limit: int | None) -> dict:
    """Build a temporary library of a SQuAD file's articles and ask its questions."""
    from retrieval import evaluation
    from app.service import Sourcebook

    documents, items = evaluation.load_squad(path)
    with tempfile.TemporaryDirectory(prefix="sourcebook-squad-") as scratch:
        library = Path(scratch)
        if index is not None:
            # The model's export is reused from the given index, so nothing is exported again.
            exported = Path(index) / "model-onnx"
            if exported.is_dir():
                shutil.copytree(exported, library / "model-onnx")
        err.print(f"ingesting {len(documents)} articles into a temporary library...")
        Sourcebook(settings_for(library)).ingest_documents(documents)

        def open_library(_: Path | None, **overrides):
            return Sourcebook(settings_for(library).model_copy(update=overrides))

        return {"articles": len(documents), **_eval_questions(open_library, items, library, calibrate=calibrate, limit=limit)}


def _eval_beir(directory: Path, split: str, run_out: Path | None, index: Path | None) -> dict:
    from retrieval import evaluation
    from app.service import Sourcebook

    benchmark = evaluation.load_beir(directory, split)
    with tempfile.TemporaryDirectory(prefix="sourcebook-beir-") as scratch:
        service = Sourcebook(settings_for(index or Path(scratch)))
        err.print(f"ingesting {len(benchmark.documents)} documents (unchanged ones are reused)...")
        service.ingest_documents(benchmark.documents)
        runs = evaluation.beir_runs(service, benchmark.queries, fusion=service.fusion)
    if run_out:
        evaluation.write_trec_run(run_out, runs["hybrid"], "sourcebook-hybrid")
    return {
        "queries": len(benchmark.queries),
        "documents": len(benchmark.documents),
        "modes": {mode: evaluation.beir_metrics({q: [d for d, _ in r] for q, r in run.items()}, benchmark.qrels)
                  for mode, run in runs.items()},
    }


@app.command()
def chat(index: IndexOption = None, k: KOption = 5) -> None:
    """Answer questions typed at a prompt until an empty line or Ctrl-D."""
    with failures_as_messages():
        service = open_service(index)
    documents, chunks = service.counts()
    out.print(f"sourcebook: {documents} documents, {chunks} passages. Ask a question (empty line to quit).")
    while True:
        try:
            question = input("? ")
        except EOFError:
            break
        if not question.strip():
            break
        with failures_as_messages():
            print_answer(service.ask(question, k=k))
        out.print()


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but loopback is public.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 7860,
    index: IndexOption = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Folder uploads are saved into.")] = None,
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", help="Ingest files added, changed or removed in the corpus folder while serving.")
    ] = False,
) -> None:
    """Serve the chat page at / and the HTTP API under /api, after bringing the index in line with the corpus folder."""
    import uvicorn

    from app.watch import CorpusWatcher
    from ui.server import create_app

    require_free_port(host, port)
    watcher = None
    try:
        with failures_as_messages():
            service = open_service(index, corpus=corpus)
            # The readers load now, not on the first question; a missing one stops here, in one line.
            service.load_readers()
            if watch:
                # Started before the catch-up below, so a change made while it runs is taken up after it.
                logging.getLogger("app.watch").setLevel(logging.INFO)
                try:
                    watcher = CorpusWatcher(service).start()
                except RuntimeError as error:
                    err.print(f"[red]error:[/red] {escape(str(error))}; serve without --watch", soft_wrap=True)
                    raise typer.Exit(1) from error
            # The corpus folder is the source of truth: finish what a crash or an edit while the
            # server was stopped left undone before serving anything.
            report = service.reconcile()
        for source, reason in report.failed:
            err.print(f"[yellow]skipped[/yellow] {escape(source)}: {escape(reason)}", soft_wrap=True)
        if report.added or report.updated or report.removed:
            print(f"sourcebook: the store caught up with {service.settings.corpus_dir}: {len(report.added)} added, "
                  f"{len(report.updated)} updated, {len(report.removed)} removed", flush=True)
        documents, chunks = service.counts()
        watching = f"; watching {service.settings.corpus_dir} for changes" if watcher else ""
        # Plain print: this line is read in logs too, where rich would pad it to the console width.
        print(f"sourcebook: {documents} documents, {chunks} passages{watching}. "
              f"Open http://{host}:{port}/ (API docs at /docs)", flush=True)
        # One worker process: the model and index load once and are shared by the request
        # threads (FastAPI runs the model-bound routes in its thread pool), so users are
        # served side by side without a copy of the model per process.
        uvicorn.run(create_app(service), host=host, port=port, workers=1, log_level="warning")
    finally:
        # After the server has stopped (uvicorn.run returns on Ctrl-C or SIGTERM).
        if watcher is not None:
            watcher.stop()


feedback_app = typer.Typer(help="Readers' ratings of answers.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[Optional[Path], typer.Option("--out", help="File to write (default: standard output).")] = None,
    index: IndexOption = None,
) -> None:
    """Write every stored rating as JSON lines."""
    from retrieval.library import STORE_FILE
    from retrieval.store import Store

    with failures_as_messages():
        # Reading feedback needs no model: open the store alone.
        store_path = settings_for(index).index_dir / STORE_FILE
        if not store_path.exists():
            raise FileNotFoundError(f"no index at {store_path.parent}")
        lines = [json.dumps(row, ensure_ascii=False) for row in Store(store_path).feedback()]
    text = "\n".join(lines) + ("\n" if lines else "")
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(lines)} ratings to {output}")
    else:
        sys.stdout.write(text)


def _open_store(index: Path | None):
    """Open the store alone (no model): for reading ratings."""
    from retrieval.library import STORE_FILE
    from retrieval.store import Store

    store_path = settings_for(index).index_dir / STORE_FILE
    if not store_path.exists():
        raise FileNotFoundError(f"no index at {store_path.parent}")
    return Store(store_path)


def _write_lines(rows: list[dict], output: Path | None) -> None:
    """Write rows as JSON lines to a file (written whole) or standard output."""
    from retrieval.files import write_atomically

    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if output:
        write_atomically(output, text)
    else:
        sys.stdout.write(text)


@feedback_app.command("to-eval")
def feedback_to_eval(
    output: Annotated[Optional[Path], typer.Option("--out", help="Question-set file to write (default: standard output).")] = None,
    candidates: Annotated[
        Optional[Path],
        typer.Option("--candidates", help="Write the candidates to review here instead of among the items."),
    ] = None,
    exported: Annotated[
        Optional[Path],
        typer.Option("--from", help="Read ratings from a `feedback export` file (of any version) instead of the index."),
    ] = None,
    index: IndexOption = None,
) -> None:
    """Turn rated answers into question-set lines for `sourcebook eval` (the corpus/qa.jsonl format).

    A thumbs-up becomes an item (answerable, its quotes the expected answers; or unanswerable, for
    a "not in the documents" rated helpful). A thumbs-down with a comment becomes a candidate: a
    line with a `review` field (the comment, the answer given, its citations) and no `answerable`,
    which `sourcebook eval` refuses until a person fills in `answers` and `answerable` and removes
    `review`: then the bad answer is a regression test.
    """
    from app.feedback import Rating, eval_lines

    with failures_as_messages():
        if exported is not None:
            records = []
            for number, line in enumerate(exported.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError as error:
                        raise ValueError(f"{exported}:{number}: not a rating ({error})") from error
        else:
            records = _open_store(index).feedback()
        ratings = []
        for number, record in enumerate(records, start=1):
            try:
                ratings.append(Rating.from_record(record))
            except (ValueError, AttributeError) as error:
                raise ValueError(f"rating {number}: {error}") from error
        lines = eval_lines(ratings)
        if candidates is not None:
            _write_lines(lines.items, output)
            _write_lines(lines.candidates, candidates)
        else:
            _write_lines(lines.items + lines.candidates, output)
    err.print(
        f"{len(lines.items)} items, {len(lines.candidates)} candidates to review"
        + (f" (in {candidates})" if candidates else "")
        + (f", {lines.skipped} thumbs-down without a comment skipped" if lines.skipped else ""),
        soft_wrap=True,
    )


@app.command()
def gaps(index: IndexOption = None, as_json: JsonOption = False) -> None:
    """List the questions the documents did not answer, grouped by meaning, most asked first."""
    with failures_as_messages():
        service = open_service(index)
        found = service.gaps()
    if as_json:
        print(json.dumps([gap.to_dict() for gap in found], ensure_ascii=False))
        return
    if not found:
        out.print("No gaps: every question asked was answered (or none was asked yet).")
        return
    for rank, gap in enumerate(found, start=1):
        out.print(f"[cyan]{rank}.[/cyan] [bold]{escape(gap.question)}[/bold]  [dim]asked {gap.count}x[/dim]",
                  soft_wrap=True)
        for wording in gap.questions[1:]:
            out.print(f"   also: {escape(wording)}", soft_wrap=True)
        for document in gap.documents:
            out.print(f"   [dim]nearest: {escape(document.title)} ({escape(document.source)})[/dim]", soft_wrap=True)


CorpusOption = Annotated[Optional[Path], typer.Option("--corpus", help="The corpus folder (default corpus).")]


@app.command()
def deleted(index: IndexOption = None, corpus: CorpusOption = None, as_json: JsonOption = False) -> None:
    """List deleted (and replaced) documents kept in the corpus folder's .deleted/, most recent first."""
    from app.deleted import kept_files

    with failures_as_messages():
        kept = kept_files(settings_for(index, corpus).corpus_dir)
    if as_json:
        print(json.dumps([k.to_dict() for k in kept], ensure_ascii=False))
        return
    table = Table("document id", "name", "set aside (UTC)", "kept as", "size")
    for k in kept:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.set_aside))
        name = escape(k.name) + (" [yellow](name in use)[/yellow]" if k.name_taken else "")
        table.add_row(k.document_id, name, when, escape(k.kept_as), f"{k.size:,}")
    out.print(table)


@app.command()
def restore(
    kept_id: Annotated[str, typer.Argument(metavar="ID", help="A deleted document's id (or a kept file's id) from `sourcebook deleted`.")],
    index: IndexOption = None,
    corpus: CorpusOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a deleted document's file back into the corpus folder and index it again."""
    with failures_as_messages():
        service = open_service(index, corpus=corpus)
        restored = service.restore(kept_id)
    if as_json:
        print(json.dumps({"id": restored.document_id, "title": restored.title, "source": restored.source,
                          "name": restored.name, "restored_from": restored.restored_from, "chunks": restored.chunks},
                         ensure_ascii=False))
        return
    out.print(f"restored {escape(restored.source)} ({restored.chunks} passages) from {escape(restored.restored_from)}",
              soft_wrap=True)
