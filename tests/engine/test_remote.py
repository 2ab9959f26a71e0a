"""``crds-batch bestrefs -r/--remote-bestrefs`` (:mod:`crds_async.engine.remote`).

A ``crds-batch serve`` of the shared config and (a private copy of) its mappings runs in
this process, on loopback, in a thread with its own event loop, so the tests can see the
pages it is asked and change its page size.  The remote answers must be the local batch's
for the same datasets (answers, error and problem lines, JWST screening, exit status), and
the reference's own ``crds bestrefs -r`` asking the same server must print the same answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from crds_async.config import Config
from crds_async.engine.batch import BatchSpec, run_batch
from crds_async.engine.datasets import RulesService, dataset_parameters
from crds_async.engine.remote import resolve_remote_context, run_remote
from crds_async.errors import ConfigError, FetchError, HeaderError
from crds_async.fetch.server import CrdsServer, RpcError, run_server
from crds_async.fetch.server_config import read_server_config
from tests.conftest import CACHE, CORPUS, needs_reference
from tests.fetch.helpers import ROOT, make_served_cache

CONTEXTS = {"hst": "hst_0729.pmap", "jwst": "jwst_0541.pmap"}


class _Server(CrdsServer):
    """A served cache that records the size of every header-map page it is asked, and can
    be told to fail them."""

    def __init__(self, *args, **kwargs) -> None:
        self.pages: list[int] = []
        self.fail_pages = False
        super().__init__(*args, **kwargs)

    async def get_best_references_by_header_map(self, context, header_map, reftypes=None):
        self.pages.append(len(header_map) if isinstance(header_map, dict) else -1)
        if self.fail_pages:
            raise RpcError("this server is failing on purpose")
        return await super().get_best_references_by_header_map(context, header_map, reftypes)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, shared_cache):
    """``{observatory: (server, url)}``: the shared HST and JWST rules, one server per
    observatory (a client refuses another observatory's server), served from this process."""
    root = tmp_path_factory.mktemp("remote_served")
    cache = make_served_cache(root / "cache", shared_cache, observatories=tuple(CONTEXTS))
    found = {obs: _Server(cache, obs) for obs in CONTEXTS}
    for server in found.values():
        server.rules_service = RulesService(server.cfg)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def serve() -> None:
        state["runners"] = [await run_server(server) for server in found.values()]
        state["stop"] = asyncio.Event()
        started.set()
        await state["stop"].wait()
        for runner in state["runners"]:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(120), "the servers did not start"
    try:
        yield {obs: (server, server.base_url) for obs, server in found.items()}
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def served(servers):
    """``(server, url)`` of the HST server."""
    return servers["hst"]


@pytest.fixture
def pages(servers):
    """The HST server, its page logs cleared, page sizes restored after the test."""
    sizes = {obs: server.max_headers_per_rpc for obs, (server, _) in servers.items()}
    for server, _ in servers.values():
        server.pages.clear()
    yield servers["hst"][0]
    for obs, (server, _) in servers.items():
        server.max_headers_per_rpc = sizes[obs]
        server.fail_pages = False


def _env(url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_READONLY_CACHE="1", CRDS_SERVER_URL=url, **extra)
    return env


def ours(url: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """``crds-batch bestrefs`` (a subprocess, one worker: the machine is shared)."""
    return subprocess.run([sys.executable, "-m", "crds_async", "bestrefs", "-j", "1", *args],
                          env=_env(url, **extra), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _without_summary(stderr: str) -> list[str]:
    """stderr less the closing summary line (its seconds differ from run to run)."""
    return [line for line in stderr.splitlines() if not line.startswith("crds-batch bestrefs: ")]


@pytest.fixture(scope="module")
def local_runs(servers):
    """The local ``--format json`` run of each corpus (the remote runs' expectation)."""
    return {obs: ours(servers[obs][1], "--context", context, str(CORPUS / obs), "--format", "json")
            for obs, context in CONTEXTS.items()}


@pytest.mark.parametrize("observatory", sorted(CONTEXTS))
def test_remote_json_is_the_local_json(servers, local_runs, pages, observatory):
    """The whole corpus: answers, error lines (the corpus has failing datasets), JWST's
    screened types and the exit status are the local run's; the server answered them all."""
    server, url = servers[observatory]
    local = local_runs[observatory]
    remote = ours(url, "-r", "--context", CONTEXTS[observatory], str(CORPUS / observatory), "--format", "json")
    assert local.returncode == 1 and "ERROR: " in local.stderr  # the corpus has failing datasets
    assert remote.returncode == local.returncode, remote.stderr[-2000:]
    assert remote.stdout == local.stdout
    assert _without_summary(remote.stderr) == _without_summary(local.stderr)
    assert len(json.loads(remote.stdout)) == 300
    assert sum(server.pages) == 300  # answered by the server, not locally
    if observatory == "jwst":  # screened: not every dataset gets every type of its instrument
        answers = json.loads(remote.stdout)
        assert len({frozenset(a) for a in answers.values()}) > 10


def test_small_pages_keep_order_and_every_dataset(served, local_runs, pages):
    """A server announcing 7 headers per call gets pages of at most 7, and the output is
    still complete and in input order."""
    _, url = served
    pages.max_headers_per_rpc = 7
    remote = ours(url, "-r", "--context", "hst_0729.pmap", str(CORPUS / "hst"), "--format", "json")
    assert remote.stdout == local_runs["hst"].stdout
    assert list(json.loads(remote.stdout)) == list(json.loads(local_runs["hst"].stdout))
    assert len(pages.pages) >= 300 // 7 and max(pages.pages) <= 7 and sum(pages.pages) == 300


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("context", ["hst_0729.pmap", "hst-operational"])
def test_unreachable_server_exits_3_with_one_line(context):
    url = f"http://127.0.0.1:{_closed_port()}"
    run = ours(url, "-r", "--context", context, str(CORPUS / "hst" / "i04bzq0vq_raw.fits"),
               CRDS_CLIENT_RETRY_COUNT="1")
    assert run.returncode == 3
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 1 and url in run.stderr, run.stderr


def test_a_failing_server_fails_the_batch_with_exit_3(served, pages):
    _, url = served
    pages.fail_pages = True
    run = ours(url, "-r", "--context", "hst_0729.pmap", str(CORPUS / "hst"), "--format", "json")
    assert run.returncode == 3
    assert "failing on purpose" in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr


# ---------------------------------------------------------------- the engine's results, in process


def _spec(url: str, **changes) -> BatchSpec:
    cfg = Config(cache_roots=(("CRDS_PATH", str(CACHE)),), readonly_cache=True, server_url=url, mode="remote")
    return BatchSpec(cfg=cfg, context="hst_0729.pmap", observatory="hst", render_json=True, **changes)


async def _collect(batch) -> list:
    async with contextlib.aclosing(batch) as results:
        return [result async for result in results]


def _fields(result) -> tuple:
    return (result.path, result.instrument, result.answers, result.error, result.problems,
            result.observed, result.answers_json)


def test_results_are_the_local_engines(served, pages, tmp_path):
    """Files, unreadable files, a repeated file and parameter sets (one naming an instrument
    the context lacks: the server's per-id NOT FOUND) give the local engine's results, in
    input order, over several pages."""
    _, url = served
    pages.max_headers_per_rpc = 7
    files = sorted(str(p) for p in (CORPUS / "hst").iterdir())[:20]
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    text = tmp_path / "notes.fits"
    text.write_text("not a dataset\n")
    items = [*files[:9], str(empty), files[0], str(text), *files[9:],
             ("DUMPED1", dataset_parameters(files[3])), ("ODDONE", {"INSTRUME": "NIRCAM", "EXP_TYPE": "NRC_IMAGE"})]
    remote = asyncio.run(_collect(run_remote(items, _spec(url))))
    local = asyncio.run(_collect(run_batch(items, _spec(url), jobs=1)))
    assert [_fields(r) for r in remote] == [_fields(r) for r in local]
    assert [r.path for r in remote] == [i if isinstance(i, str) else i[0] for i in items]
    assert remote[9].error and remote[11].error and remote[-1].error and remote[-1].error.startswith("ODDONE: ")
    assert sum(r.answers is not None for r in remote) == 22
    assert len(pages.pages) >= 4 and max(pages.pages) <= 7


def test_source_errors_and_types(served, pages):
    """A dataset its source could not give is its own error, never sent; --types are asked."""
    _, url = served
    files = sorted(str(p) for p in (CORPUS / "hst").iterdir())[:3]
    missing = HeaderError("LOST1: the server gave no parameters: NOT FOUND")
    items = [files[0], ("LOST1", missing), files[1]]
    results = asyncio.run(_collect(run_remote(items, _spec(url, reftypes=("darkfile", "biasfile")))))
    assert [r.error for r in results] == [None, str(missing), None]
    assert all(set(r.answers) == {"darkfile", "biasfile"} for r in (results[0], results[2]))
    assert sum(pages.pages) == 2


def test_a_failing_server_raises_a_fetch_error(served, pages):
    _, url = served
    pages.fail_pages = True
    files = sorted(str(p) for p in (CORPUS / "hst").iterdir())[:3]
    with pytest.raises(FetchError, match="failing on purpose"):
        asyncio.run(_collect(run_remote(files, _spec(url))))


def test_contexts_resolved_by_the_server(served):
    _, url = served
    cfg = _spec(url).cfg
    config = read_server_config(CACHE / "config" / "hst")
    latest = config.get("latest_context") or config["operational_context"]
    assert resolve_remote_context("hst-operational", cfg, "hst") == latest
    assert resolve_remote_context("latest", cfg, "hst") == latest
    assert resolve_remote_context("hst_0729.pmap", cfg, "hst") == "hst_0729.pmap"
    # a date: the newest context of the server's history delivered by then
    # (hst_0728 on 2019-09-04 14:37:48, hst_0729 on 2019-09-09 16:09:51)
    assert resolve_remote_context("hst-2019-09-05T00:00:00", cfg, "hst") == "hst_0728.pmap"
    assert resolve_remote_context("hst-2019-09-09T16:09:51", cfg, "hst") == "hst_0729.pmap"
    with pytest.raises(FetchError, match="no hst context was in use"):
        resolve_remote_context("hst-1990-01-01T00:00:00", cfg, "hst")
    # a .pmap name needs no server
    offline = cfg.replace(server_url=f"http://127.0.0.1:{_closed_port()}")
    assert resolve_remote_context("hst_0700.pmap", offline, "hst") == "hst_0700.pmap"
    with pytest.raises(FetchError):
        resolve_remote_context("hst-operational", offline, "hst")
    with pytest.raises(ConfigError):
        resolve_remote_context("jwst-operational", cfg, "hst")


# ---------------------------------------------------------------- the reference's client as judge


#: a few datasets of each corpus, failing ones included (HST: ibkc623hq; JWST: an nrs1 dataset)
JUDGED = {"hst": [*sorted(p.name for p in (CORPUS / "hst").iterdir())[:8], "ibkc623hq_raw.fits"],
          "jwst": sorted(p.name for p in (CORPUS / "jwst").iterdir())[:8]}


def _error_files(stderr: str) -> set[str]:
    """The files our ``ERROR: <path>: ...`` lines name."""
    return {line[len("ERROR: "):].split(": ")[0].lower() for line in stderr.splitlines() if line.startswith("ERROR: ")}


@needs_reference
@pytest.mark.slow
@pytest.mark.parametrize("observatory", sorted(CONTEXTS))
def test_the_references_remote_bestrefs_prints_the_same(servers, observatory, tmp_path):
    """The reference's ``crds bestrefs -r`` asking the same server prints the same answers
    (``--print-new-references``) as ``crds-batch bestrefs -r``, and fails the same datasets."""
    from tests.cli.test_bestrefs_reference import reference_error_files

    _, url = servers[observatory]
    files = [str(CORPUS / observatory / name) for name in JUDGED[observatory]]
    args = ["--files", *files, "--new-context", CONTEXTS[observatory], "--print-new-references"]
    reference = subprocess.run([sys.executable, "-m", "crds.bestrefs", "-r", *args],
                               env=_env(url, CRDS_OBSERVATORY=observatory), cwd=tmp_path,
                               capture_output=True, text=True, timeout=600)
    mine = ours(url, "-r", *args)
    assert reference.stdout.strip(), reference.stderr[-2000:]
    assert mine.stdout == reference.stdout
    assert mine.returncode == reference.returncode == 1  # both have failing datasets
    assert _error_files(mine.stderr) == reference_error_files(reference.stderr) != set()


def test_another_observatorys_server_is_refused(servers):
    """As the reference's client: a JWST batch asking the HST server is a configuration error."""
    _, url = servers["hst"]
    for context in ("jwst_0541.pmap", "jwst-operational"):
        run = ours(url, "-r", "--context", context, str(CORPUS / "jwst"))
        assert run.returncode == 2 and run.stdout == ""
        assert len(run.stderr.splitlines()) == 1 and "serves 'hst', not 'jwst'" in run.stderr, run.stderr


def test_narrowed_remote_answers_keep_the_servers_bad_references(served, pages):
    """-r with -k: the answers left are judged again by the server's bad references (the
    batch has no local context to take them from)."""
    server, url = served
    files = sorted(str(p) for p in (CORPUS / "hst").glob("*.fits"))[:12]
    run = ours(url, "-r", "--context", CONTEXTS["hst"], *files, "--format", "json", "-t", "darkfile")
    assert run.stdout, run.stderr
    first = json.loads(run.stdout)
    bad = sorted({a["darkfile"] for a in first.values() if not a["darkfile"].startswith("NOT FOUND")})[:1]
    assert bad, "the sample has a dark answered"
    config = server.server_configs["hst"]
    saved = config.get("bad_files_list")
    config["bad_files_list"] = bad
    try:
        runs = [ours(url, "-r", "--context", CONTEXTS["hst"], *files, "-q", *extra)
                for extra in ((), ("-k", "biasfile"))]
    finally:
        config["bad_files_list"] = saved
    flagged = [[line for line in run.stderr.splitlines() if "designated scientifically invalid" in line]
               for run in runs]
    assert flagged[0] and flagged[0] == flagged[1], runs[1].stderr
    assert all(run.returncode == 1 for run in runs)


def test_remote_answers_of_a_dump_are_the_local_ones(served, pages, tmp_path):
    """-r --load-pickles: each dump line is read where the page is prepared, one read a page."""
    _, url = served
    files = sorted((CORPUS / "hst").glob("*.fits"))[:40]
    dump = tmp_path / "sets.json"
    dump.write_text("".join(json.dumps({f"{p.stem.upper()}:{p.stem.upper()}": dataset_parameters(p)}) + "\n"
                            for p in files))
    runs = [ours(url, *extra, "--context", CONTEXTS["hst"], "--load-pickles", str(dump), "--format", "json")
            for extra in (("-r",), ())]
    assert runs[0].stdout == runs[1].stdout and len(json.loads(runs[0].stdout)) > 30
    assert _without_summary(runs[0].stderr) == _without_summary(runs[1].stderr)
    assert runs[0].returncode == runs[1].returncode
    assert sum(pages.pages) == len(files)  # the server answered them
