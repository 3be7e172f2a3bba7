"""Turn benchmark results into the targets check, a Markdown report and PNG plots."""

from __future__ import annotations

from pathlib import Path


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _startup(healthy_s: float, searched_s: float | None) -> str:
    return f"{healthy_s} ({searched_s})" if searched_s is not None else str(healthy_s)


def _query_row(results: dict, name: str) -> dict | None:
    return next((r for r in results.get("queries", []) if r["library"] == name), None)


def _by_size(results: dict, chunks: int) -> dict | None:
    return next((r for r in results.get("queries", []) if r["chunks"] == chunks), None)


def targets(results: dict) -> list[dict]:
    """Each target of issue 4 with the figure measured for it and whether it is met."""
    checks = []

    def check(name: str, target: str, measured, met: bool) -> None:
        checks.append({"target": name, "bound": target, "measured": measured, "met": bool(met)})

    ingest = results.get("ingest")
    if ingest:
        for key in ("default_corpus", "scifact"):
            row = ingest[key]
            check(f"ingest pipeline vs plain ONNX encode, {row['corpus']}", ">= 0.95",
                  row["pipeline_vs_plain_onnx"], row["pipeline_vs_plain_onnx"] >= 0.95)
        re = ingest["reingest"]
        check("re-ingest unchanged SciFact: no model work", "0 texts embedded, seconds",
              f"{re['unchanged_texts_embedded']} embedded, {re['unchanged_s']} s", re["unchanged_texts_embedded"] == 0)
    hundred_k = _by_size(results, 100_000)
    if hundred_k:
        search = hundred_k["http"]["search"]
        check("HTTP search at 100k: p50", "<= 15 ms", search["p50_ms"], search["p50_ms"] <= 15)
        check("HTTP search at 100k: p95", "<= 40 ms", search["p95_ms"], search["p95_ms"] <= 40)
        keyword = hundred_k["in_process"]["keyword"]
        check("keyword half at 100k: p50 / p95", "<= 15 / 40 ms", f"{keyword['p50_ms']} / {keyword['p95_ms']}",
              keyword["p50_ms"] <= 15 and keyword["p95_ms"] <= 40)
    million = _by_size(results, 1_000_000)
    if million:
        search = million["http"]["search"]
        check("HTTP search at 1M: p95", "<= 100 ms", search["p95_ms"], search["p95_ms"] <= 100)
        recall = million["in_process"]["recall_at_10_vs_exact"]
        check("dense recall@10 vs exact at 1M", ">= 0.95", recall, recall >= 0.95)
        keyword = million["in_process"]["keyword"]
        check("keyword half at 1M: p95", "<= 100 ms", keyword["p95_ms"], keyword["p95_ms"] <= 100)
        check("`sourcebook serve` start-up at 1M", "<= 5 s", million["serve_startup_s"], million["serve_startup_s"] <= 5)
    load = results.get("load")
    if load:
        clients = f"{load['clients']} clients, {load['seconds']:.0f} s"
        check(f"load ({clients}): 5xx responses", "0", load["server_errors"], load["server_errors"] == 0)
        check(f"load ({clients}): requests without a response", "0", f"{load['dropped']} of {load['sent']:,}",
              load["dropped"] == 0 and load["server_survived"])
        memory = load["memory"]
        check(f"load ({clients}): server memory flat after warm-up", f"growth <= {memory['flat_bound_mib']} MiB",
              f"{memory['growth_mib']:+.1f} MiB ({memory['slope_mib_per_min']:+.2f} MiB/min)",
              memory["growth_mib"] <= memory["flat_bound_mib"])
    return checks


def markdown(results: dict) -> str:
    """The whole report as Markdown: targets first, then each section's table."""
    machine = results["machine"]
    cores = machine["cores"]
    lines = [
        "# sourcebook benchmarks",
        "",
        f"Command: `{results['command']}` ({results['mode']} mode), started {results['started']}, "
        f"took {results['duration_s'] / 60:.1f} min.",
        *(f"Merged in: `{extra['command']}`, started {extra['started']}, took {extra['duration_s'] / 60:.1f} min "
          f"(load average {extra['load_average_at_start']} at start)." for extra in results.get("merged", [])),
        f"Machine: {cores} cores ({machine['cpu']}), {machine['memory_gib']} GiB; load average "
        f"{machine['load_average_at_start']} at start, {machine.get('load_average_at_end')} at end "
        "(a shared machine: other work ran meanwhile, which is why every comparison is measured in one run).",
        f"Versions: Python {machine['python']}, faiss {machine['faiss']}, onnxruntime {machine['onnxruntime']}, "
        f"torch {machine['torch']}, sentence-transformers {machine['sentence_transformers']}.",
        "",
        "## Targets",
        "",
        *_table(["target", "bound", "measured", "met"],
                [[t["target"], t["bound"], t["measured"], "yes" if t["met"] else "**no**"] for t in results["targets"]]),
    ]
    ingest = results.get("ingest")
    if ingest:
        rows = []
        for key in ("default_corpus", "scifact"):
            r = ingest[key]
            rows.append([r["corpus"], f"{r['chunks']:,}", f"{r['texts_embedded']:,}", r["pipeline_chunks_per_s"],
                         r["plain_onnx_chunks_per_s"], r["pipeline_vs_plain_onnx"],
                         f"{r['plain_torch_chunks_per_s']} ({r['plain_torch_texts']:,} texts)"])
        flops = ingest["flops"]
        re = ingest["reingest"]
        lines += [
            "",
            f"## Ingest ({cores} cores)",
            "",
            "Whole pipeline (load, chunk, embed, store, index, save) against plain `SentenceTransformer.encode` "
            "(batch 32, normalised) of exactly the texts the pipeline embedded, alternating block by block in one "
            "process. Plain ONNX encode is `SentenceTransformer` running the very ONNX export the pipeline's "
            "embedder runs (on ONNX Runtime directly), with the same session options, so it is the like-for-like "
            "ceiling; plain PyTorch "
            "encode (the default a script would use) ran on the first block. "
            "Speeds are chunks stored per second of each.",
            "",
            *_table(["corpus", "chunks", "texts embedded", "pipeline chunks/s", "plain ONNX encode chunks/s",
                     "pipeline / plain ONNX", "plain PyTorch encode chunks/s"], rows),
            "",
            f"SciFact per-block ratio (pipeline / plain ONNX): {ingest['scifact'].get('ratio_per_block')}",
            *(["", f"The ONNX export loaded apart at ONNX Runtime's default session options encoded SciFact's first "
                   f"block ({default['texts']:,} texts) in {default['seconds']} s, against {default['same_session_seconds']} s "
                   "with the pipeline's session options."]
              if (default := ingest["scifact"].get("plain_onnx_default_session")) else []),
            "",
            f"**Arithmetic ceiling.** all-MiniLM-L6-v2 needs {flops['model_gflop_per_chunk']} GFLOP per SciFact "
            f"chunk ({flops['texts']:,} texts of mean {flops['mean_tokens_per_text']} tokens with [CLS]/[SEP] for "
            f"{flops['chunks']:,} chunks; 6 layers, hidden 384, FFN 1536). Padding each batch of 32 to its "
            "longest text adds to that: "
            + (f"{flops['padding_overhead'] * 100:.1f}% in the plain encode calls ({flops['plain_calls']}, one per "
               "block, ordered by characters as sentence-transformers orders a call), "
               f"{flops['pipeline_padding_overhead'] * 100:.1f}% in the pipeline's {flops['pipeline_model_calls']:,} "
               "calls (one batch each, of windows alike in token count across many documents), "
               f"{flops['token_sorted_padding_overhead'] * 100:.1f}% at best (one call ordered by tokens). "
               if "token_sorted_padding_overhead" in flops else
               f"{flops['padding_overhead'] * 100:.1f}% to one call ordered by tokens (the pipeline's own figure "
               "was not recorded in this run). ") +
            "A float32 numpy matmul (2048x2048) runs at "
            f"{flops['matmul_gflops_all_cores']} GFLOP/s on {flops['cores']} cores "
            f"({flops['matmul_gflops_one_core']} on one), so these cores could at best embed "
            f"{flops['ceiling_chunks_per_s']} chunks/s. Plain ONNX encode reached {flops['plain_onnx_chunks_per_s']} "
            f"chunks/s ({flops['plain_onnx_share_of_ceiling'] * 100:.0f}% of that), the pipeline "
            f"{flops['pipeline_chunks_per_s']} ({flops['pipeline_share_of_ceiling'] * 100:.0f}%).",
            "",
            f"**Re-ingest** of SciFact ({re['documents']:,} abstracts, {re['chunks']:,} chunks) over its full index: "
            f"unchanged {re['unchanged_s']} s with {re['unchanged_texts_embedded']} texts embedded "
            f"({re['unchanged_documents_skipped']:,} documents skipped by hash); one document changed "
            f"{re['one_changed_s']} s with {re['one_changed_texts_embedded']} text(s) embedded.",
        ]
    if results.get("queries"):
        rows = []
        for r in results["queries"]:
            http, local = r["http"], r["in_process"]
            size = f"{r['chunks']:,} ({r['library']})"
            for label, figures in (
                ("search over HTTP", http["search"]),
                ("search in process", local["search"]),
                ("  search in process, CPU time per query", local["search_cpu"]),
                ("  encode query (ONNX)", local["encode"]),
                ("  dense half (" + local["index_kind"] + ", k=100)", local["dense"]),
                ("  keyword half (tantivy BM25, k=100)", local["keyword"]),
                ("ask over HTTP", http["ask"]),
                ("ask in process", local["ask"]),
                ("plain: PyTorch encode + IndexFlatIP", local["plain"]),
                ("  plain: PyTorch encode", local["plain_encode"]),
                ("  plain: IndexFlatIP search", local["plain_flat"]),
            ):
                rows.append([size, label, figures["p50_ms"], figures["p95_ms"], figures["p99_ms"], figures["n"]])
        lines += [
            "",
            f"## Query latency (ms, {cores} cores, one query at a time)",
            "",
            "Queries are SciFact's claims. Over HTTP: the real app (`ui.server.create_app(service, with_page=False)` "
            "under uvicorn on 127.0.0.1, in its own process) called with httpx, k=5. In process: the same service "
            "in the benchmark's process, each query alternating with the plain baseline. The 100k and 1M libraries "
            "are **synthetic** (vectors and text derived from real SciFact chunks, bench/synthetic.py).",
            "",
            *_table(["chunks", "what", "p50", "p95", "p99", "n"], rows),
            "",
            *_table(["chunks", "vectors", "index", "dense recall@10 vs exact (same query vectors)"],
                    [[f"{r['chunks']:,}", f"{r['in_process']['vectors']:,}", r["in_process"]["index_kind"],
                      r["in_process"]["recall_at_10_vs_exact"]] for r in results["queries"]]),
        ]
        rows = []
        for r in results["queries"]:
            memory = r["http"]["memory_after_queries"]
            per_chunk = r.get("bytes_per_chunk", "(reference)")
            breakdown = r["http"]["startup_breakdown"]
            rows.append([f"{r['chunks']:,}", f"{memory['rss'] / 2**20:.0f}", f"{memory['anon'] / 2**20:.0f}",
                         f"{memory['file'] / 2**20:.0f}", per_chunk,
                         _startup(r["serve_startup_s"], r.get("serve_first_search_s")),
                         _startup(r["http"]["startup_s"], r["http"].get("first_search_s")),
                         f"imports {breakdown['imports_s']}, service {breakdown['service_s']}, app {breakdown['app_s']}",
                         r["in_process"]["open_s"]])
        lines += [
            "",
            f"## Memory and start-up ({cores} cores)",
            "",
            "Resident memory of the API server process after the queries above (MiB; anonymous and file-backed, "
            "the latter being the memory-mapped vector index and SQLite pages, which the kernel can drop). "
            "Per chunk: the growth over the SciFact server measured in the same run, divided by the extra chunks. "
            "Start-up: from launching "
            "the process to the first 200 from /healthz (and, in brackets, to the first search answered).",
            "",
            *_table(["chunks", "RSS MiB", "anon MiB", "file MiB", "bytes per chunk", "`sourcebook serve` start-up s",
                     "API server start-up s", "API server breakdown s", "open library in process s"], rows),
        ]
    if results.get("index_choice"):
        rows = [[f"{r['size']:,}", r["index"], r["build_s"], r["recall_at_10"], r["recall_at_100"], r["p50_ms"],
                 r["p95_ms"], r["p99_ms"]] for r in results["index_choice"]]
        lines += [
            "",
            "## Index choice (one thread per query, k=100)",
            "",
            "Synthetic vectors (bench/synthetic.py), SciFact claims as queries. Recall is against exact search "
            "over the same vectors. 'automatic' is `retrieval.index.VectorIndex` grown in batches of 10,000 "
            "as a rebuild from the store does; its build time includes every retrain on the way.",
            "",
            *_table(["vectors", "index", "build s", "recall@10", "recall@100", "p50 ms", "p95 ms", "p99 ms"], rows),
        ]
    load = results.get("load")
    if load:
        rows = [[path, f"{e['sent']:,}", f"{e['answered']:,}", e["dropped"], e["server_errors"],
                 ", ".join(f"{status}: {n:,}" for status, n in e["statuses"].items()), e["per_s"],
                 e["latency"]["p50_ms"], e["latency"]["p95_ms"], e["latency"]["p99_ms"], e["latency"]["n"]]
                for path, e in load["endpoints"].items()]
        memory = load["memory"]
        lines += [
            "",
            f"## Load ({load['clients']} clients at once, {cores} cores)",
            "",
            f"{load['clients']} clients on 127.0.0.1, each sending one request at a time and the next as soon as "
            f"the answer is in: a warm-up of {load['warmup_answers']} answers ({load['warmup_s']:.0f} s), then "
            f"{load['seconds']:.0f} s measured, "
            f"against the real app (`bench.server`: the API under uvicorn in its own process, real model) over the "
            f"{load['library']} ({load['chunks']} chunks). Requests: each of the {load['questions']} questions of "
            "corpus/qa.jsonl asked (/api/ask) and searched for (/api/search) in turn, k=5. Sent and answered count "
            "the whole run; requests per second and latency (ms) count the measured part only. The clients share "
            "the cores with the server.",
            "",
            *_table(["endpoint", "sent", "answered", "dropped", "5xx", "statuses", "requests/s", "p50", "p95",
                     "p99", "n"], rows),
            "",
            f"Server resident memory (MiB, sampled every second, {memory['samples']} samples): "
            f"{memory['idle_mib']} before the load, {memory['start_mib']} after warm-up, {memory['end_mib']} at the "
            f"end, {memory['max_mib']} at most; growth over the measured run {memory['growth_mib']:+.1f} MiB "
            f"({memory['growth_bytes_per_request']:,} bytes per request), trend {memory['slope_mib_per_min']:+.2f} "
            "MiB per minute (least squares).",
        ]
    return "\n".join(lines) + "\n"


def plots(results: dict, out: Path) -> None:
    """Latency against size, recall against latency, and ingest speeds, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = results["machine"]["cores"]
    if results.get("queries"):
        rows = results["queries"]
        sizes = [r["chunks"] for r in rows]
        figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        series = {
            "search, HTTP": lambda r: r["http"]["search"],
            "search, in process": lambda r: r["in_process"]["search"],
            "dense half": lambda r: r["in_process"]["dense"],
            "keyword half": lambda r: r["in_process"]["keyword"],
            "plain: PyTorch encode + IndexFlatIP": lambda r: r["in_process"]["plain"],
        }
        for axis, key in zip(axes, ("p50_ms", "p95_ms")):
            for label, pick in series.items():
                axis.plot(sizes, [pick(r)[key] for r in rows], marker="o", label=label)
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("chunks (100k and 1M synthetic)")
            axis.set_title(f"{key.split('_')[0]} latency, {cores} cores")
            axis.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("ms")
        axes[1].axhline(100, color="grey", linestyle="--", linewidth=0.8)
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "latency.png", dpi=110)
        plt.close(figure)
    if results.get("index_choice"):
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for row in results["index_choice"]:
            axis.scatter(row["p50_ms"], row["recall_at_10"], s=30)
            axis.annotate(f"{row['size'] // 1000}k {row['index'].split(' ')[0].rstrip(':')}",
                          (row["p50_ms"], row["recall_at_10"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_xscale("log")
        axis.set_xlabel("p50 ms per query (one thread, k=100)")
        axis.set_ylabel("recall@10 vs exact")
        axis.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
        axis.set_title("Index choice: recall against latency (synthetic vectors)")
        axis.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(out / "index_choice.png", dpi=110)
        plt.close(figure)
    if results.get("ingest"):
        ingest = results["ingest"]
        labels = [ingest[k]["corpus"] for k in ("default_corpus", "scifact")]
        figure, axis = plt.subplots(figsize=(7, 4))
        width = 0.27
        for offset, (key, label) in enumerate((("pipeline_chunks_per_s", "sourcebook pipeline"),
                                               ("plain_onnx_chunks_per_s", "plain encode, ONNX"),
                                               ("plain_torch_chunks_per_s", "plain encode, PyTorch"))):
            axis.bar([i + (offset - 1) * width for i in range(len(labels))],
                     [ingest[k][key] for k in ("default_corpus", "scifact")], width, label=label)
        axis.axhline(ingest["flops"]["ceiling_chunks_per_s"], color="grey", linestyle="--", linewidth=0.8,
                     label="arithmetic ceiling (SciFact chunks)")
        axis.set_xticks(range(len(labels)), labels, fontsize=8)
        axis.set_ylabel(f"chunks per second, {cores} cores")
        axis.legend(fontsize=8)
        axis.set_title("Ingest speed")
        figure.tight_layout()
        figure.savefig(out / "ingest.png", dpi=110)
        plt.close(figure)


def merge(base: dict, extra: dict) -> dict:
    """Add a later run's rows (other sizes, re-measured libraries) to earlier results; its rows win."""
    merged = dict(base)
    # A later run's rows replace every earlier row of the same size (index choice) or library (queries).
    for section, key in (("index_choice", lambda r: r["size"]), ("queries", lambda r: r["library"])):
        if extra.get(section):
            fresh = {key(r) for r in extra[section]}
            kept = [r for r in base.get(section, []) if key(r) not in fresh]
            rows = kept + extra[section]
            size = (lambda r: r["size"]) if section == "index_choice" else (lambda r: r["chunks"])
            merged[section] = sorted(rows, key=size)
    # A later load run replaces the earlier one.
    if extra.get("load"):
        merged["load"] = extra["load"]
    # So does a later ingest run (its figures are one comparison, measured together).
    if extra.get("ingest"):
        merged["ingest"] = extra["ingest"]
    merged["merged"] = [*base.get("merged", []), {
        "command": extra["command"], "started": extra["started"], "duration_s": extra["duration_s"],
        "load_average_at_start": extra["machine"]["load_average_at_start"], "sections": extra["sections"]}]
    merged["targets"] = targets(merged)
    return merged
