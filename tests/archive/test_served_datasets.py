"""``crds-batch serve --datasets``: the reference's bestrefs gets dataset parameters from it.

A catalogue of the HST corpus (built into a temp dir) is served on loopback with a small
``max_headers_per_rpc`` so that every id list is paged.  The reference client (crds 14.0.3,
in a subprocess, read-only shared cache) runs ``bestrefs --datasets`` and
``--affected-datasets`` against it.  Its stdout (the affected products) is kept in
``tests/archive/data/`` for comparison with crds-batch's own answers: see
:func:`reference_affected`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from crds_async.archive import remote
from crds_async.archive.catalogue import DatasetCatalogue
from crds_async.config import Config
from crds_async.errors import FetchError, ServiceError
from crds_async.fetch.client import CrdsClient
from tests.conftest import CACHE, needs_reference
from tests.fetch.helpers import PYTHON, ROOT, make_served_cache, server_process

DATA = Path(__file__).resolve().parent / "data"
PAGE = 50          # max_headers_per_rpc announced: our client pages ACS (76) and COS (45) in two each
OLD, NEW = "hst_0600.pmap", "hst_0729.pmap"


def reference_affected(stdout: str) -> list[str]:
    """The affected products the reference's ``bestrefs --print-affected`` printed, in its order."""
    return [line.strip() for line in stdout.splitlines() if line.strip() and " " not in line.strip()]


def saved_affected(name: str) -> list[str]:
    """A saved reference run's affected products (``tests/archive/data/<name>``)."""
    return reference_affected((DATA / name).read_text())


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_cache, corpus):
    """(server URL, catalogue path, its sha1 before serving) for the whole HST corpus."""
    root = tmp_path_factory.mktemp("served_datasets")
    db = root / "datasets.db"
    with DatasetCatalogue(db) as catalogue:
        assert catalogue.add_files(sorted((corpus / "hst").iterdir())).datasets == 300
    cache = make_served_cache(root / "cache", shared_cache)
    before = _sha1(db)
    with server_process(cache, "--datasets", str(db), "--max-headers-per-rpc", str(PAGE)) as url:
        yield url, db, before


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _reference(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_SERVER_URL=url, CRDS_OBSERVATORY="hst", CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_PATH=str(CACHE))
    return subprocess.run([PYTHON, "-m", "crds.bestrefs", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_our_client_pages_what_the_catalogue_holds(served):
    url, db, before = served

    async def fetch():
        async with CrdsClient(url, Config(retry_count=2, retry_delay_seconds=0.1)) as client:
            size = await remote.page_size(client)
            ids = await remote.dataset_ids(client, NEW, ["acs", "cos"])
            late = await remote.dataset_ids(client, NEW, ["acs", "cos"], {"acs": "2010-01-01 00:00:00"})
            pages = [item async for item in remote.dataset_headers(client, NEW, ids, in_flight=3)]
            small = [item async for item in remote.dataset_headers(client, NEW, ids, per_page=7, in_flight=2)]
            everything = [item async for item in remote.instrument_headers(client, NEW, ["wfc3"])]
            # more than the page size is answered too (the reference pages by its cached server_config)
            whole = await client.call("get_dataset_headers_by_id", NEW, ids, None)
            with pytest.raises(ServiceError, match="Unknown context"):
                await client.call("get_dataset_ids", "hst_9999.pmap", "acs")
            parkeys = await client.call("get_required_parkeys", NEW)
            return size, ids, late, pages, small, everything, parkeys, whole

    size, ids, late, pages, small, everything, parkeys, whole = asyncio.run(fetch())
    with DatasetCatalogue(db, readonly=True) as catalogue:
        assert size == PAGE
        assert ids == sorted(catalogue.ids("acs") + catalogue.ids("cos")) and len(ids) == 121
        assert late == sorted(catalogue.ids("acs", "2010-01-01 00:00:00") + catalogue.ids("cos"))
        assert len(late) < len(ids)
        assert [i for i, _ in pages] == ids and dict(pages) == catalogue.headers(ids)
        assert small == pages and whole == dict(pages)
        assert dict(everything) == catalogue.headers(catalogue.ids("wfc3"))
    assert parkeys["acs"][0] == "INSTRUME" and "DETECTOR" in parkeys["acs"]
    assert _sha1(db) == before, "serving wrote into the catalogue"


@needs_reference
def test_reference_bestrefs_datasets(served, tmp_path):
    url, _db, _sha = served
    proc = _reference(url, tmp_path, "--datasets", "I04BZQ010:I04BZQ0VQ", "L0B458010", "la9k03c3q",
                      "--new-context", NEW)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dumped 2 of 3 datasets" in proc.stderr       # la9k03c3q is not in the corpus
    assert "Dataset 'LA9K03C3Q' isn't represented by downloaded parameters" in proc.stderr
    assert reference_affected(proc.stdout) == []         # no comparison asked: nothing on stdout


@needs_reference
def test_reference_affected_datasets(served, tmp_path):
    url, _db, _sha = served
    proc = _reference(url, tmp_path, "--affected-datasets", "--old-context", OLD, "--new-context", NEW)
    # the corpus has datasets whose rules fail on purpose: the reference reports them and exits 1
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    affected = reference_affected(proc.stdout)
    assert f"Affected products = {len(affected)}" in proc.stderr
    assert affected == saved_affected(f"reference_affected_datasets_{OLD[:-5]}_{NEW[:-5]}.txt")


@needs_reference
def test_reference_affected_acs_cos(served, tmp_path):
    url, _db, _sha = served
    # --affected-datasets with --instruments is refused by the reference itself (two source
    # modes); this is the same bundle for named instruments, every date.
    proc = _reference(url, tmp_path, "--instruments", "acs", "cos", "--old-context", OLD, "--new-context", NEW,
                      "--print-affected", "--undefined-differences-matter", "--na-differences-matter")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    affected = reference_affected(proc.stdout)
    assert f"Affected products = {len(affected)}" in proc.stderr
    assert affected == saved_affected(f"reference_affected_acs_cos_{OLD[:-5]}_{NEW[:-5]}.txt")
    assert all(p.startswith(("j", "l")) for p in affected)   # ACS and COS products only


def test_serve_refuses_a_missing_catalogue_and_a_bad_page_size(tmp_path, shared_cache):
    cache = make_served_cache(tmp_path / "cache", shared_cache, mappings=False)
    base = [PYTHON, "-m", "crds_async", "serve", "--cache", str(cache), "--port", "0"]
    missing = subprocess.run([*base, "--datasets", str(tmp_path / "none.db")], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
    assert missing.returncode == 2 and "none.db: no such dataset catalogue" in missing.stderr
    zero = subprocess.run([*base, "--datasets", str(tmp_path / "none.db"), "--max-headers-per-rpc", "0"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert zero.returncode == 2 and "--max-headers-per-rpc 0: must be at least 1" in zero.stderr


def test_pages_survive_server_faults_through_retries(served, tmp_path, shared_cache):
    _url, db, _sha = served
    cache = make_served_cache(tmp_path / "cache", shared_cache)
    faults = ["--fault-rpc", "--faults", "error500,reset", "--fault-rate", "0.3", "--seed", "7"]
    with server_process(cache, "--datasets", str(db), "--max-headers-per-rpc", "20", *faults) as url:

        async def fetch(retries):
            async with CrdsClient(url, Config(retry_count=retries, retry_delay_seconds=0)) as client:
                ids = await remote.dataset_ids(client, NEW, ["acs", "cos", "stis"])
                return [item async for item in remote.dataset_headers(client, NEW, ids, per_page=20)]

        pages = asyncio.run(fetch(12))
        with pytest.raises(FetchError, match="failed after 1 attempt"):
            asyncio.run(fetch(1))
    with DatasetCatalogue(db, readonly=True) as catalogue:
        ids = sorted(catalogue.ids("acs") + catalogue.ids("cos") + catalogue.ids("stis"))
        assert [i for i, _ in pages] == ids and dict(pages) == catalogue.headers(ids)


@needs_reference
def test_required_parkeys_are_the_references(served):
    url, _db, _sha = served
    code = f"import crds, json; print(json.dumps(crds.get_pickled_mapping({NEW!r}).get_required_parkeys()))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_SERVER_URL="https://hst-crds.stsci.edu")
    proc = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]

    async def ours():
        async with CrdsClient(url, Config()) as client:
            return await client.call("get_required_parkeys", NEW)

    assert asyncio.run(ours()) == json.loads(proc.stdout.splitlines()[-1])


def test_workers_ask_for_the_parameters_themselves(served, tmp_path, shared_cache):
    """--instruments items carry ids (ServedDataset): the batch's evaluation asks the server
    for a task's parameters, in pages, and answers as when this process paged them; a
    server that fails after its retries fails the batch (not each dataset)."""
    from crds_async.archive.remote import ServedDataset, server_items
    from crds_async.engine.batch import BatchSpec, evaluate_paths

    url, db, _sha = served
    cfg = Config(cache_roots=(("CRDS_PATH", str(CACHE)),), readonly_cache=True, mode="local",
                 retry_count=1, retry_delay_seconds=0)
    deferred = list(server_items(cfg, NEW, "hst", instruments=["acs", "cos"], server_url=url))
    eager = list(server_items(cfg, NEW, "hst", instruments=["acs", "cos"], server_url=url, deferred=False))
    assert [i for i, _ in deferred] == [i for i, _ in eager] and len(deferred) == 121
    assert all(type(source) is ServedDataset for _, source in deferred)
    blob = pickle.dumps(deferred)
    assert b"DETECTOR" not in blob  # ids, not parameters
    spec = BatchSpec(cfg=cfg, context=NEW, observatory="hst")
    from_workers = evaluate_paths(pickle.loads(blob), spec)
    assert [(r.path, r.answers, r.error) for r in from_workers] == \
        [(r.path, r.answers, r.error) for r in evaluate_paths(eager, spec)]
    # the server goes away after the ids were listed: the task fails with a network error
    cache = make_served_cache(tmp_path / "cache", shared_cache)
    with server_process(cache, "--datasets", str(db)) as gone:
        items = list(server_items(cfg, NEW, "hst", instruments=["cos"], server_url=gone))
    with pytest.raises(FetchError):
        evaluate_paths(pickle.loads(pickle.dumps(items[:5])), spec)
