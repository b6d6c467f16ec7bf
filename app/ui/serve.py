"""The dashboard's server process (what ``psl ui`` starts): warm first, then serve Streamlit.

A page's first visit on a cold process paid for PyTorch, the dataset checks of the demo preset, the
Learn page's toy models and the figure renderer — 2.5-3.5 s of CPU, and the warm-up thread that did it
in the background competed for the interpreter with the very page being drawn. Here the process does
that work BEFORE it opens its port, so a browser never meets a cold server: ``psl ui`` is ready a few
seconds later, and every first visit costs what a second one does.

    python -m app.ui.serve <streamlit run arguments>     # e.g. app/ui/dashboard.py --server.port 8501
"""

from __future__ import annotations

import gc
import sys
import time

from app.logs import get_logger

log = get_logger("ui.serve")


def preload() -> float:
    """Import and warm everything the pages use (seconds taken). Never fatal: a failing step is
    logged by the warm-up and the page that needs it pays for it later."""
    started = time.perf_counter()
    import altair  # noqa: F401
    import pandas  # noqa: F401

    from app.ui import warmup

    warmup.mark_started()  # the dashboard's own background warm-up has nothing left to do
    warmup.warm()
    freeze_heap()
    return time.perf_counter() - started


def freeze_heap() -> None:
    """Move every object alive now (PyTorch, pandas, Altair, the warmed caches: ~450,000 objects) out
    of the garbage collector's reach. They live as long as the process, but each full collection walked
    them all — 0.16 s of CPU that fell, every few page visits, into whichever page was being drawn
    (a Runs visit took 0.5 or 0.95 s depending on it). Collections now only walk what pages create."""
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> int:
    from app.logs import configure_logging
    from app.settings import get_settings

    configure_logging(get_settings(), file_name="dashboard.log")  # a failed warm-up step is logged there
    seconds = preload()
    log.info("dashboard process warmed in %.1f s; serving", seconds)
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", "run", *argv]
    return streamlit_cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
