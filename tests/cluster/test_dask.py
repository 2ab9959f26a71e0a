"""Batches on a Dask cluster (issue #14): same bytes as one machine, a killed worker costs
nothing, an unreachable scheduler is one line and exit 2.

One local cluster of two worker processes is shared by the module (start-up costs seconds);
the CLI tests reach it by its scheduler address (``--dask ADDRESS``), and one test starts its
own with ``--dask local:2``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from crds_async.cli import bestrefs_cluster, bestrefs_running  # noqa: E402
from crds_async.cli import main as cli_main  # noqa: E402
from crds_async.cluster.dask import ClusterTarget, dask_cluster, parse_target  # noqa: E402
from crds_async.config import config_from_env  # noqa: E402
from crds_async.engine.batch import BatchSpec, run_batch  # noqa: E402
from crds_async.engine.datasets import dataset_parameters  # noqa: E402
from crds_async.errors import ConfigError, exit_code  # noqa: E402
from tests.conftest import CACHE, CORPUS  # noqa: E402

ENV = {"CRDS_PATH": str(CACHE), "CRDS_READONLY_CACHE": "1", "CRDS_MODE": "local"}


@pytest.fixture(scope="module")
def cluster():
    """One local cluster (two worker processes of one thread) for the module."""
    with dask_cluster(ClusterTarget(None, 2)) as batch:
        yield batch


@pytest.fixture
def crds_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CRDS_"):
            monkeypatch.delenv(name)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def wired(monkeypatch):
    """``crds-batch bestrefs`` with the cluster switches, as bestrefs_running wires them (the
    wiring is added here for as long as that module does not call bestrefs_cluster itself)."""
    probe = argparse.ArgumentParser()
    bestrefs_running.add_arguments(probe)
    if any("--dask" in action.option_strings for action in probe._actions):
        return
    add, check, runner = (bestrefs_running.add_arguments, bestrefs_running.check_arguments,
                          bestrefs_running.batch_runner)

    def add_arguments(parser):
        add(parser)
        bestrefs_cluster.add_arguments(parser)

    def check_arguments(args):
        return check(args) or bestrefs_cluster.check_arguments(args)

    @contextlib.contextmanager
    def batch_runner(args):
        with bestrefs_cluster.cluster_runner(args) as on_cluster:
            if on_cluster is not None:
                yield on_cluster
                return
        with runner(args) as local:
            yield local

    monkeypatch.setattr(bestrefs_running, "add_arguments", add_arguments)
    monkeypatch.setattr(bestrefs_running, "check_arguments", check_arguments)
    monkeypatch.setattr(bestrefs_running, "batch_runner", batch_runner)


def bestrefs(*argv: str) -> int:
    return cli_main(["bestrefs", *argv])


# ------------------------------------------------------------------ the switch

def test_targets_parse_and_bad_ones_are_usage_errors():
    assert parse_target("local:3") == ClusterTarget(None, 3)
    assert parse_target("local", default_workers=2) == ClusterTarget(None, 2)
    assert parse_target("tcp://10.0.0.5:8786") == ClusterTarget("tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:x", "locally", ""):
        with pytest.raises(ConfigError, match="--dask"):
            parse_target(bad)
    args = argparse.Namespace(dask=None, dask_partition=None)
    assert bestrefs_cluster.check_arguments(args) is None
    with bestrefs_cluster.cluster_runner(args) as running:
        assert running is None  # no --dask: the batch runs as it always did
    assert "local:N" in bestrefs_cluster.check_arguments(argparse.Namespace(dask="local:0", dask_partition=None))
    assert "needs --dask" in bestrefs_cluster.check_arguments(argparse.Namespace(dask=None, dask_partition=5))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line_and_exit_2(crds_env, wired, capsys):
    import dask

    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ConfigError) as caught:
            with dask_cluster(ClusterTarget(address)):
                pass
        assert exit_code(caught.value) == 2
        assert str(caught.value).startswith(f"--dask {address}: cannot reach the Dask scheduler")
        status = bestrefs(str(CORPUS / "hst"), "--context", "hst_0729.pmap", "--dask", address, "-q")
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"crds-batch bestrefs: error: --dask {address}: cannot reach the Dask scheduler (")


# ------------------------------------------------------------------ same bytes as one machine

@pytest.mark.parametrize("observatory, context", [("hst", "hst_0729"), ("jwst", "jwst_0541")])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_the_corpus_on_the_cluster_gives_the_same_bytes(crds_env, wired, cluster, tmp_path, observatory,
                                                        context, fmt):
    """--dask ADDRESS (small partitions, so that both workers share the work and answers come
    back out of order) writes byte for byte what one machine writes."""
    from crds_async.cli.bestrefs_output import FORMATS

    if fmt not in FORMATS:
        pytest.skip(f"--format {fmt} is not in this build")
    single, spread = tmp_path / f"single.{fmt}", tmp_path / f"dask.{fmt}"
    common = [str(CORPUS / observatory), "--context", f"{context}.pmap", "--format", fmt, "-q"]
    assert bestrefs(*common, "-j", "1", "--output", str(single)) == 1  # the corpus has error answers
    address = cluster.client.scheduler.address
    assert bestrefs(*common, "--dask", address, "--dask-partition", "16", "--output", str(spread)) == 1
    assert spread.read_bytes() == single.read_bytes()
    if fmt == "json":
        assert len(json.loads(single.read_text())) == 300


def test_dask_local_2_starts_and_stops_its_own_cluster(crds_env, wired, tmp_path, expected_hst):
    out = tmp_path / "out.json"
    status = bestrefs(str(CORPUS / "hst"), "--context", "hst_0729.pmap", "--all-types", "--format", "json",
                      "--dask", "local:2", "--dask-partition", "40", "--output", str(out), "-q")
    assert status == 1
    got = {os.path.basename(path): answers for path, answers in json.loads(out.read_text()).items()}
    assert got == expected_hst  # the reference's answers


def _worker_profiling(dask_worker) -> tuple[bool, bool]:
    """(the setting, a profile callback running) in this worker (``Client.run`` passes it)."""
    import dask.config

    return (dask.config.get("distributed.worker.profile.enabled"), "profile" in dask_worker.periodic_callbacks)


def test_the_commands_own_cluster_runs_no_profiler(cluster):
    """No dashboard reads the workers' statistical profiles; their sampling costs CPU."""
    assert set(cluster.client.run(_worker_profiling).values()) == {(False, False)}


def test_sync_references_is_fetched_once_by_the_main_process(crds_env, wired, cluster, tmp_path, monkeypatch):
    """Workers only evaluate; the references the answers name are fetched once, after the
    batch, by the process that writes the output."""
    from crds_async.fetch import references

    calls = []

    async def ensure_references(cfg, observatory, names, **kwargs):
        calls.append((os.getpid(), observatory, list(names)))

    monkeypatch.setattr(references, "ensure_references", ensure_references)
    sample = sorted((CORPUS / "hst").glob("*.fits"))[:40]
    status = bestrefs(*map(str, sample), "--context", "hst_0729.pmap", "--format", "json", "--sync-references",
                      "--dask", cluster.client.scheduler.address, "--dask-partition", "8",
                      "--output", str(tmp_path / "o.json"), "-q")
    assert status in (0, 1)
    answers = json.loads((tmp_path / "o.json").read_text())
    named = {a for per in answers.values() for a in per.values() if not a.startswith("NOT FOUND")}
    assert len(calls) == 1
    pid, observatory, names = calls[0]
    assert pid == os.getpid() and observatory == "hst" and set(names) == named and len(names) == len(set(names))


# ------------------------------------------------------------------ a 100,000-set dump

def _dump_items(count: int) -> list[tuple[str, dict]]:
    """``count`` parameter sets under new ids, cycling the HST corpus headers."""
    sources = sorted((CORPUS / "hst").glob("*.fits"))
    parameters = [dataset_parameters(path) for path in sources]
    return [(f"ds{i:07d}_{sources[i % len(sources)].name}", parameters[i % len(sources)]) for i in range(count)]


def _render(results: list, fmt: str, path: Path) -> bytes:
    from crds_async.cli.bestrefs_output import open_sink

    sink = open_sink(fmt, str(path))
    for result in results:
        sink.write(result)
    sink.close()
    return path.read_bytes()


async def _collect(items, spec, **running) -> list:
    async with contextlib.aclosing(run_batch(items, spec, **running)) as results:
        return [result async for result in results]


@pytest.fixture(scope="module")
def dump():
    return _dump_items(100_000)


@pytest.fixture(scope="module")
def dump_spec():
    return BatchSpec(cfg=config_from_env(ENV), context="hst_0729.pmap", observatory="hst")


@pytest.fixture(scope="module")
def dump_single(dump, dump_spec):
    return asyncio.run(_collect(dump, dump_spec, jobs=1))


@pytest.mark.slow
def test_a_100000_set_dump_gives_the_same_bytes(cluster, dump, dump_spec, dump_single, tmp_path, expected_hst):
    spread = asyncio.run(_collect(dump, dump_spec, **cluster.batch_kwargs(partition=4000)))
    assert [r.path for r in spread] == [name for name, _ in dump]
    for fmt in ("json", "jsonl"):
        assert _render(spread, fmt, tmp_path / f"d.{fmt}") == _render(dump_single, fmt, tmp_path / f"s.{fmt}")
    for result in spread[:600]:  # and they are the answers of the headers the ids were made from
        assert result.answers == expected_hst[result.path.split("_", 1)[1]]


async def _kill_the_busiest_worker(client, pids: dict, killed: dict) -> None:
    """SIGKILL the worker holding the most tasks; ``killed`` records its address and tasks."""
    processing = await asyncio.to_thread(client.processing)
    address = max(processing, key=lambda a: len(processing[a]))
    killed["address"], killed["tasks"] = address, len(processing[address])
    os.kill(pids[address], signal.SIGKILL)


def test_a_worker_killed_mid_run_costs_nothing(cluster, dump, dump_spec, dump_single):
    """SIGKILL one worker while it holds partitions: the scheduler re-runs them on the other
    worker (or the restarted one); every dataset comes back exactly once, in order."""
    client = cluster.client
    dump, dump_single = dump[:20_000], dump_single[:20_000]
    before = client.run(os.getpid)
    killed: dict = {}

    async def run() -> list:
        out = []
        running = cluster.batch_kwargs(partition=2000)
        async with contextlib.aclosing(run_batch(dump, dump_spec, **running)) as results:
            async for result in results:
                out.append(result)
                if len(out) == 1000 and not killed:  # the second partition is under way
                    await _kill_the_busiest_worker(client, before, killed)
        return out

    spread = asyncio.run(run())
    assert killed["tasks"] >= 1  # it died holding work
    names = [r.path for r in spread]
    assert names == [name for name, _ in dump] and len(set(names)) == len(dump)
    assert [(r.answers, r.error) for r in spread] == [(r.answers, r.error) for r in dump_single]
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after this one
    assert before[killed["address"]] not in client.run(os.getpid).values()  # it did die


# ------------------------------------------------------------------ a campaign tallied on the workers

def _write_dump(path: Path, items: list[tuple[str, dict]]) -> Path:
    with open(path, "w") as out:
        for dataset_id, parameters in items:
            out.write(json.dumps({dataset_id: parameters}) + "\n")
    return path


def test_a_report_only_campaign_on_the_cluster_prints_what_one_process_prints(crds_env, wired, cluster,
                                                                               tmp_path, capsys):
    """--print-affected on a dump: the workers list their spans of the dump and account for
    their datasets (run_tallied); stdout, the ERROR lines and the status are one process's."""
    dump = _write_dump(tmp_path / "d.json", _dump_items(3000))
    common = ["--load-pickles", str(dump), "--old-context", "hst_0600.pmap", "--new-context", "hst_0729.pmap",
              "--print-affected", "--print-update-counts"]
    outputs = []
    for where in (["-j", "1"], ["--dask", cluster.client.scheduler.address, "--dask-partition", "400"]):
        status = bestrefs(*common, *where)
        captured = capsys.readouterr()
        errors = [line for line in captured.err.splitlines() if not line.startswith("crds-batch bestrefs: ")]
        outputs.append((status, captured.out, errors))
    assert outputs[1] == outputs[0]
    status, out, errors = outputs[0]
    assert status == 1 and len(out.split()) > 1000 and len(errors) > 100


def _ids_of(results: list) -> list[str]:
    return [result.path for result in results]


def test_a_worker_killed_mid_campaign_costs_nothing(cluster, dump_spec, tmp_path):
    """The tallied path, spans of a dump listed by the workers: SIGKILL a worker holding
    partitions; every dataset is accounted for exactly once, in order."""
    from crds_async.engine.batch import run_tallied
    from crds_async.sources.dump_spans import survey_dump

    items = _dump_items(12_000)
    spans = survey_dump(_write_dump(tmp_path / "d.json", items), 1 << 16).spans
    client = cluster.client
    before = client.run(os.getpid)
    killed: dict = {}

    async def run() -> list:
        ids: list[str] = []
        running = cluster.batch_kwargs(partition=1000)
        async with contextlib.aclosing(run_tallied(None, dump_spec, _ids_of, spans=spans, **running)) as chunks:
            async for size, chunk_ids in chunks:
                assert size == len(chunk_ids)
                ids.extend(chunk_ids)
                if not killed:
                    await _kill_the_busiest_worker(client, before, killed)
        return ids

    ids = asyncio.run(run())
    assert killed["tasks"] >= 1
    assert ids == [dataset_id for dataset_id, _ in items]
    client.wait_for_workers(2, timeout=60)
    assert before[killed["address"]] not in client.run(os.getpid).values()


def _load_context(context: str) -> str:
    from crds_async.engine.registry import get_evaluator

    return get_evaluator(context, config_from_env(ENV), "hst").context.name


def test_a_worker_freezes_the_contexts_a_task_loaded_once(monkeypatch):
    """A Dask worker loads its own contexts (it is started, not forked from the batch's
    process, which froze its own): after the task that loaded one, its objects are frozen
    out of the collector's sight, once, not after every task."""
    import gc
    import pickle

    from crds_async.cluster import dask as dask_module
    from crds_async.engine.registry import REGISTRY

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(len(REGISTRY)))
    REGISTRY.clear()
    monkeypatch.setattr(dask_module, "_FROZEN_AT", [0])
    for _ in range(3):
        blob = dask_module._run_packed(pickle.dumps((_load_context, ("hst_0729.pmap",), {})))
        assert pickle.loads(blob) == "hst_0729.pmap"
    assert len(frozen) == 1 and frozen[0] >= 1
