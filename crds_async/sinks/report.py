"""``--report DIR``: a campaign report, an HTML page and PNG plots, beside any output format.

While the batch streams, :class:`ReportSink` keeps only counts and a few examples (memory
bounded however many datasets pass): per instrument x reference type the datasets whose
answer changes (with an old context) or fails; per month of observation the affected (or
failed) datasets; error classes with counts and examples.  At the end it draws the plots
(matplotlib's Agg renderer, no display) and writes ``DIR/*.png`` then ``DIR/index.html``,
each file atomically (:func:`crds_async.atomic.atomic_write`), the page last, so a page is
never seen before its images.

The observation date is ``DatasetResult.observed`` when the engine fills it; otherwise it is
read from the dataset file (``DATE-OBS``, or JWST's ``META.OBSERVATION.DATE``), and only for
the datasets the date plot counts.
"""

from __future__ import annotations

import html
import io
import os
import re
from collections import Counter
from collections.abc import Callable

from ..atomic import atomic_write
from ..engine.campaign import is_affected
from ..engine.results import DatasetResult
from . import printable

__all__ = ["ReportSink", "check_report_dir", "error_class", "observation_month", "PAGE", "PLOTS"]

#: the page and the plots it shows, in that order
PAGE = "index.html"
PLOTS = ("by_type.png", "by_date.png", "errors.png")

#: keywords that hold the observation date, as the engine's parameters name them
_DATE_KEYS = ("META.OBSERVATION.DATE", "DATE-OBS")
_MAX_CLASSES = 50
_MAX_EXAMPLES = 3
_OTHER = "(other error classes)"
_NO_DATE = "no date"


def check_report_dir(path: str) -> str | None:
    """Why ``path`` cannot take a report (one line), or None: a directory, or a new name in one."""
    target = os.path.realpath(path)
    if os.path.exists(target):
        if not os.path.isdir(target):
            return f"{path}: not a directory"
        if not os.access(target, os.W_OK | os.X_OK):
            return f"{path}: directory not writable"
        return None
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        return f"{path}: directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path}: cannot create it in {parent} (not writable)"
    return None


_LIST = re.compile(r"\[[^\]]*\]")
_QUOTED = re.compile(r"(parameter=)?('[^']*'|\"[^\"]*\")")
_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")


def error_class(line: str, path: str) -> str:
    """What kind of error a line is: the dataset's name, lists, quoted values (but a
    parameter's name) and numbers taken out, so that the same failure on many datasets is one
    class."""
    text = line[len(path) + 2:] if line.startswith(path + ": ") else line
    text = text.replace(path, "<dataset>")
    text = _QUOTED.sub(lambda m: m.group(0) if m.group(1) else "'…'", _LIST.sub("[…]", text))
    text = _NUMBER.sub("N", text)  # digits inside a name (BINAXIS1) stay: no word boundary
    return printable(text.strip()[:160])


_ISO = re.compile(r"(\d{4})-(\d{2})")
_OLD_HST = re.compile(r"(\d{2})/(\d{2})/(\d{2})$")  # dd/mm/yy, as old HST headers write DATE-OBS


def observation_month(value: object) -> str | None:
    """``YYYY-MM`` of a date value (ISO, or old HST ``dd/mm/yy``), or None."""
    if value is None:
        return None
    text = str(value).strip()
    match = _ISO.match(text)
    if match:
        return f"{match.group(1)}-{match.group(2)}"
    match = _OLD_HST.match(text)
    if match:
        year = int(match.group(3))
        return f"{1900 + year if year >= 50 else 2000 + year}-{match.group(2)}"
    return None


def _date_of_file(path: str) -> str | None:
    """The observation date in a dataset file's header, or None (any failure: no date)."""
    from ..engine.datasets import dataset_parameters

    if not os.path.isfile(path):
        return None
    try:
        parameters = dataset_parameters(path, keep=lambda k: k in _DATE_KEYS or "INSTRUME" in k)
    except Exception:  # noqa: BLE001 - the date is a nicety; the batch has reported the file already
        return None
    for key in _DATE_KEYS:
        if parameters.get(key) not in (None, "", "UNDEFINED"):
            return str(parameters[key])
    return None


class _Examples:
    """Counts per error class, with the first few examples of each (bounded)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, cls: str, example: str) -> None:
        if cls not in self.counts and len(self.counts) >= _MAX_CLASSES:
            cls = _OTHER
        self.counts[cls] += 1
        shown = self.examples.setdefault(cls, [])
        if len(shown) < _MAX_EXAMPLES:
            shown.append(printable(example)[:400])


class ReportSink:
    """Collects a batch's counts; writes the report on ``close`` (nothing on ``abort``).

    Parameters
    ----------
    directory : str
        Where the report goes (created when missing; its files are replaced).
    context, old_context : str
        The batch's contexts (old: None without a comparison).
    context_diff : dict or exception, optional
        The summary of the contexts' difference, ``{instrument: {reftype: {added, deleted,
        replaced, changed, old_files, new_files, mappings}}}`` (what ``crds-batch diff
        --summary`` prints), or the error that prevented it.
    describe_diff : callable, optional
        Turns that error into the line the page shows.
    date_of : callable, optional
        ``path -> date text or None`` for results without ``observed`` (default: read the file).
    """

    def __init__(self, directory: str, *, context: str, old_context: str | None = None,
                 context_diff: object = None, describe_diff: Callable[[BaseException], str] | None = None,
                 date_of: Callable[[str], str | None] = _date_of_file) -> None:
        self.directory = directory
        self.context = context
        self.old_context = old_context
        self.context_diff = context_diff
        self.describe_diff = describe_diff or (lambda exc: f"the context difference failed: {exc}")
        self.date_of = date_of
        self.totals: Counter[str] = Counter()
        self.by_type: Counter[tuple[str, str]] = Counter()   # (instrument, reftype) -> datasets
        self.by_month: Counter[str] = Counter()              # month -> datasets counted
        self.errors = _Examples()
        self._done = False

    # ------------------------------------------------------------ while the batch streams

    def add(self, result: DatasetResult, changes: dict) -> None:
        """Count one dataset (``changes``: its ``{reftype: (old, new)}``, empty without an old context)."""
        totals = self.totals
        totals["files"] += 1
        if result.error is not None:
            totals["failed"] += 1
            self.errors.add(error_class(result.error, result.path), result.error)
        else:
            totals["datasets"] += 1
        instrument = result.instrument or "?"
        if result.problems:
            totals["with problems"] += 1
            for line in result.problems:
                rest = line[len(result.path) + 2:] if line.startswith(result.path + ": ") else line
                types, sep, message = rest.partition(": ")
                self.errors.add(error_class(message if sep else rest, result.path), line)
                if not self.old_context and sep:
                    for reftype in types.split(", "):
                        self.by_type[(instrument, reftype)] += 1
        counted = False
        if self.old_context:
            if is_affected(result, changes):  # as crds bestrefs counts it (no failed type)
                totals["affected"] += 1
                counted = True
                for reftype in changes:
                    self.by_type[(instrument, reftype)] += 1
        else:
            counted = result.failed
        if counted:
            observed = getattr(result, "observed", None)
            if observed is None:
                observed = self.date_of(result.path)
            self.by_month[observation_month(observed) or _NO_DATE] += 1

    # ------------------------------------------------------------ at the end

    def abort(self) -> None:
        self._done = True  # nothing is written

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        os.makedirs(self.directory, exist_ok=True)
        for name, data in zip(PLOTS, (self._plot_types(), self._plot_dates(), self._plot_errors())):
            atomic_write(os.path.join(self.directory, name), data)
        atomic_write(os.path.join(self.directory, PAGE), self.page())

    @property
    def _what(self) -> str:
        return "affected datasets" if self.old_context else "datasets with failed types"

    def _plot_types(self) -> bytes:
        from matplotlib.figure import Figure

        instruments = sorted({i for i, _ in self.by_type})
        reftypes = sorted({t for _, t in self.by_type})
        width = min(22.0, max(6.0, 0.42 * len(reftypes) + 2.5))
        height = min(12.0, max(2.6, 0.45 * len(instruments) + 2.0))
        fig = Figure(figsize=(width, height), dpi=80)
        ax = fig.add_subplot()
        ax.set_title(f"{self._what} per instrument and reference type")
        if not self.by_type:
            _empty(ax, f"no {self._what}")
        else:
            grid = [[self.by_type.get((i, t), 0) for t in reftypes] for i in instruments]
            image = ax.imshow(grid, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(reftypes)), reftypes, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(len(instruments)), instruments)
            top = max(max(row) for row in grid)
            if len(reftypes) * len(instruments) <= 400:
                for y, row in enumerate(grid):
                    for x, count in enumerate(row):
                        if count:
                            ax.text(x, y, str(count), ha="center", va="center", fontsize=7,
                                    color="black" if count > top * 0.6 else "white")
            fig.colorbar(image, ax=ax, label="datasets")
        fig.tight_layout()
        return _png(fig)

    def _plot_dates(self) -> bytes:
        from matplotlib.figure import Figure

        months = sorted(m for m in self.by_month if m != _NO_DATE)
        fig = Figure(figsize=(9, 3.4), dpi=80)
        ax = fig.add_subplot()
        undated = self.by_month.get(_NO_DATE, 0)
        ax.set_title(f"{self._what} per month of observation"
                     + (f" ({undated} without a date)" if undated else ""))
        if not months:
            _empty(ax, f"no dated {self._what}")
        else:
            # every month between the first and the last, so the time axis is even
            first, last = months[0], months[-1]
            span = []
            year, month = int(first[:4]), int(first[5:])
            while f"{year:04d}-{month:02d}" <= last and len(span) < 1200:
                span.append(f"{year:04d}-{month:02d}")
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            ax.bar(range(len(span)), [self.by_month.get(m, 0) for m in span], color="#4c72b0")
            step = max(1, len(span) // 12)
            ax.set_xticks(range(0, len(span), step), span[::step], rotation=45, ha="right", fontsize=8)
            ax.set_ylabel("datasets")
        fig.tight_layout()
        return _png(fig)

    def _plot_errors(self) -> bytes:
        from matplotlib.figure import Figure

        top = self.errors.counts.most_common(10)
        fig = Figure(figsize=(9, max(2.4, 0.4 * len(top) + 1.2)), dpi=80)
        ax = fig.add_subplot()
        ax.set_title("error classes (most frequent)")
        if not top:
            _empty(ax, "no errors")
        else:
            labels = [f"{i + 1}. {cls[:60]}" for i, (cls, _) in enumerate(top)]
            ax.barh(range(len(top)), [n for _, n in top], color="#c44e52")
            ax.set_yticks(range(len(top)), labels, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("occurrences")
        fig.tight_layout()
        return _png(fig)

    def page(self) -> str:
        """The report's HTML (self-contained but for the PNGs beside it)."""
        e = html.escape
        totals = self.totals
        compared = (f"<b>{e(self.old_context)}</b> &rarr; <b>{e(self.context)}</b>" if self.old_context
                    else f"<b>{e(self.context)}</b>")
        summary = [("files", totals["files"]), ("datasets answered", totals["datasets"]),
                   ("datasets not read or evaluated", totals["failed"]),
                   ("datasets with failed types", totals["with problems"])]
        if self.old_context:
            summary.append(("affected datasets", totals["affected"]))
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>crds-batch bestrefs report: {e(self.context)}</title>",
            "<style>body{font-family:sans-serif;margin:1.5em;max-width:1200px}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .5em;"
            "text-align:left;vertical-align:top}th{background:#eee}img{max-width:100%;display:block;"
            "margin:.5em 0}code{font-size:90%}</style>",
            "</head><body>",
            f"<h1>Best references report</h1><p>Context {compared}</p>",
            "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in summary) + "</table>",
            f'<h2>{e(self._what.capitalize())} per instrument and type</h2>',
            f'<img src="{PLOTS[0]}" alt="{e(self._what)} per instrument and reference type">',
            f'<h2>{e(self._what.capitalize())} over observation date</h2>',
            f'<img src="{PLOTS[1]}" alt="{e(self._what)} per month of observation">',
            "<h2>Error classes</h2>",
            f'<img src="{PLOTS[2]}" alt="error classes">',
            self._errors_table(),
        ]
        if self.old_context:
            parts += [f"<h2>Context difference {e(self.old_context)} &rarr; {e(self.context)}</h2>",
                      self._diff_table()]
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def _errors_table(self) -> str:
        e = html.escape
        if not self.errors.counts:
            return "<p>No errors.</p>"
        rows = ["<table><tr><th>#</th><th>class</th><th>count</th><th>examples</th></tr>"]
        for i, (cls, count) in enumerate(self.errors.counts.most_common()):
            examples = "<br>".join(f"<code>{e(x)}</code>" for x in self.errors.examples.get(cls, ()))
            rows.append(f"<tr><td>{i + 1}</td><td>{e(cls)}</td><td>{count}</td><td>{examples}</td></tr>")
        rows.append("</table>")
        return "\n".join(rows)

    def _diff_table(self) -> str:
        e = html.escape
        diff = self.context_diff
        if isinstance(diff, BaseException):
            return f"<p>{e(self.describe_diff(diff))}</p>"
        if not diff:
            return "<p>The contexts select the same files.</p>"
        rows = ["<table><tr><th>instrument</th><th>type</th><th>added</th><th>deleted</th><th>replaced</th>"
                "<th>changed</th><th>mappings and files</th></tr>"]
        for instrument, kinds in diff.items():
            for kind, entry in kinds.items():
                files = ([f"mapping {m}" for m in entry.get("mappings", ())]
                         + [f"- {n}" for n in entry.get("old_files", ())]
                         + [f"+ {n}" for n in entry.get("new_files", ())])
                shown = "<br>".join(f"<code>{e(str(f))}</code>" for f in files[:12])
                if len(files) > 12:
                    shown += f"<br>… {len(files) - 12} more"
                counts = "".join(f"<td>{entry.get(a, 0)}</td>" for a in ("added", "deleted", "replaced", "changed"))
                rows.append(f"<tr><td>{e(str(instrument))}</td><td>{e(str(kind))}</td>{counts}<td>{shown}</td></tr>")
        rows.append("</table>")
        return "\n".join(rows)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#555", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # a bare Figure draws with Agg: no display, no pyplot state
    return buffer.getvalue()
