"""Drop-in check: crds_async called exactly as the reference's ``crds`` package is called.

The same calls (the reference's positional order, its keywords, the JWST pipeline's
``getreferences(parameters, reftypes=..., context=..., observatory=...)``) are made on
corpus datasets through ``crds`` 14.0.3 in a subprocess (this module run as a script:
its process-wide caches cannot leak) and through ``crds_async`` here, on one temporary,
read-only, ``CRDS_MODE=local`` cache; results and the NAMES of raised exceptions must agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CACHE, CORPUS, needs_reference

ROOT = Path(__file__).resolve().parents[1]
HST_CONTEXT, JWST_CONTEXT = "hst_0729.pmap", "jwst_0541.pmap"
HST_DATASETS = ("i1b480y8q_raw.fits", "i1o7b7ghq_raw.fits", "i04bzq0vq_raw.fits")
JWST_DATASETS = ("jw00600020002_02210_00004_mirimage_uncal.fits",
                 "jw00604026004_01102_00009_nrcblong_uncal.fits")
SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}


def _answers(observatory: str) -> dict:
    name = {"hst": f"expected_hst_0729.json", "jwst": f"expected_jwst_0541.json"}[observatory]
    return json.loads((CORPUS / name).read_text())


def _files(answers: dict) -> list[str]:
    return [a for a in answers.values() if isinstance(a, str) and not a.startswith("NOT FOUND")]


def _calls() -> list[tuple[str, str, list, dict]]:
    """(label, function, args, kwargs); the first arg is a dataset name, made its parameters."""
    hst_a, hst_b, hst_fail = HST_DATASETS
    jw_miri, jw_nircam = JWST_DATASETS
    hst_cached = _answers("hst")[hst_a]
    hst_types = sorted(k for k, v in hst_cached.items() if not v.startswith("NOT FOUND"))
    calls = [
        # getrecommendations: positional order (parameters, reftypes, context, ignore_cache, observatory, fast)
        ("rec positional types", "getrecommendations", [hst_a, ["darkfile", "biasfile"], HST_CONTEXT], {}),
        ("rec positional all six", "getrecommendations", [hst_b, None, HST_CONTEXT, False, "hst", True], {}),
        ("rec positional real NOT FOUND", "getrecommendations", [hst_fail, ["biasfile", "darkfile"], HST_CONTEXT,
                                                                  False, "hst", True], {}),
        ("rec keywords", "getrecommendations", [hst_b], dict(reftypes=["idctab", "pfltfile"], context=HST_CONTEXT,
                                                             observatory="hst", fast=True)),
        ("rec unknown type", "getrecommendations", [hst_a, ["nosuchtype"], HST_CONTEXT], dict(fast=True)),
        ("rec unknown instrument", "getrecommendations", [{"INSTRUME": "FOO"}, None, HST_CONTEXT], {}),
        ("rec jwst all types (screened)", "getrecommendations", [jw_miri, None, JWST_CONTEXT],
         dict(observatory="jwst", fast=True)),
        ("rec jwst positional", "getrecommendations", [jw_nircam, ["dark", "flat", "gain"], JWST_CONTEXT, False,
                                                        "jwst", True], {}),
        # getreferences: answers cached -> existing paths; n/a kept
        ("refs positional cached", "getreferences", [hst_a, hst_types + ["atodtab"], HST_CONTEXT, False, "hst", True],
         {}),
        ("refs keywords cached", "getreferences", [hst_a], dict(reftypes=["darkfile", "flshfile"],
                                                                context=HST_CONTEXT, observatory="hst", fast=True)),
        # the JWST pipeline's call, unchanged
        ("refs jwst pipeline call", "getreferences", [jw_miri], dict(reftypes=["flat", "gain"], context=JWST_CONTEXT,
                                                                     observatory="jwst")),
        # a real lookup failure
        ("refs real NOT FOUND", "getreferences", [hst_fail, ["biasfile"], HST_CONTEXT], dict(observatory="hst",
                                                                                            fast=True)),
        ("refs unknown type", "getreferences", [hst_a, ["flatfile", "xxx"], HST_CONTEXT],
         dict(observatory="hst", fast=True)),
        ("context name", "get_context_name", ["hst", HST_CONTEXT], {}),
        ("context name default", "get_context_name", ["hst"], {}),
        ("locate mapping", "locate_file", ["hst_acs_darkfile_0455.rmap", "hst"], {}),
        ("locate reference", "locate_file", ["t3420179i_drk.fits", "hst"], {}),
        ("locate a path", "locate_file", ["/some/where/t3420179i_drk.fits", "hst"], {}),
    ]
    return calls


def _parameters(spec: object) -> object:
    from crds_async.engine import dataset_parameters

    if not isinstance(spec, str):
        return spec
    sub = "hst" if spec.endswith("_raw.fits") else "jwst"
    return {k: (v if isinstance(v, (str, int, float, bool)) else str(v))
            for k, v in dataset_parameters(CORPUS / sub / spec).items()}


def _plain(result: object) -> object:
    if isinstance(result, dict):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.items()}
    return result


def _run(module, calls: list) -> list:
    out = []
    for _label, func, args, kwargs in calls:
        try:
            out.append({"ok": _plain(getattr(module, func)(*args, **kwargs))})
        except Exception as exc:  # noqa: BLE001 - every failure is an answer to compare
            out.append({"raised": type(exc).__name__, "text": str(exc)})
    return out


@pytest.fixture(scope="module")
def compat_cache(tmp_path_factory) -> Path:
    """Config copied, mappings linked (read only), stand-in reference files for the cached calls."""
    import shutil

    from tests.fetch.helpers import private_mappings

    root = tmp_path_factory.mktemp("compat") / "cache"
    for obs in ("hst", "jwst"):
        shutil.copytree(CACHE / "config" / obs, root / "config" / obs)
        (root / "config" / obs / "ref_cache_subdir_mode").write_text("flat\n")  # the reference's is per process
        (root / "mappings").mkdir(exist_ok=True)
        (root / "mappings" / obs).symlink_to(private_mappings() / obs)  # never into ../shared
        (root / "references" / obs).mkdir(parents=True)
    for name in _files(_answers("hst")[HST_DATASETS[0]]):
        (root / "references" / "hst" / name).write_bytes(b"stand-in")
    for name in ("jwst_miri_flat_0371.fits", "jwst_miri_gain_0008.fits"):
        (root / "references" / "jwst" / name).write_bytes(b"stand-in")
    return root


def _env(cache: Path) -> dict[str, str]:
    return dict(CRDS_PATH=str(cache), CRDS_MODE="local", CRDS_READONLY_CACHE="1", CRDS_SERVER_URL=SERVERS["hst"])


@pytest.fixture(scope="module")
def both(compat_cache) -> tuple[list, list, list]:
    """(calls, the reference's outcomes, crds_async's outcomes): one reference run per module."""
    calls = [(label, func, [_parameters(args[0]), *args[1:]] if func.startswith("get") and func != "get_context_name"
              else args, kwargs) for label, func, args, kwargs in _calls()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(_env(compat_cache))
    proc = subprocess.run([sys.executable, "-m", "tests.test_api_compat"], input=json.dumps(calls), env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.splitlines()[-1])

    import crds_async

    saved = {k: v for k, v in os.environ.items() if k.startswith("CRDS_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(_env(compat_cache))
    try:
        crds_async.engine.REGISTRY.clear()
        ours = _run(crds_async, calls)
    finally:
        for key in _env(compat_cache):
            os.environ.pop(key, None)
        os.environ.update(saved)
        crds_async.engine.REGISTRY.clear()
    return calls, theirs, ours


LABELS = [label for label, *_ in _calls()]

#: Known differences from the reference (none today; a label here marks its case xfail, strict).
KNOWN: dict[str, str] = {}


@needs_reference
@pytest.mark.parametrize("index", [pytest.param(i, marks=pytest.mark.xfail(reason=KNOWN[label], strict=True))
                                   if label in KNOWN else i for i, label in enumerate(LABELS)], ids=LABELS)
def test_same_results_and_exception_names(both, index) -> None:
    calls, theirs, ours = both
    assert ours[index].get("raised") == theirs[index].get("raised"), (ours[index], theirs[index])
    assert ours[index].get("ok") == theirs[index].get("ok")


@needs_reference
def test_the_cases_say_something(both) -> None:
    """The comparison covers files, n/a, errors and existing paths (not vacuous)."""
    _calls_, theirs, ours = both
    raised = {o["raised"] for o in ours if "raised" in o}
    assert {"CrdsLookupError", "CrdsUnknownInstrumentError"} <= raised
    paths = [p for o in ours if isinstance(o.get("ok"), dict) for p in o["ok"].values() if str(p).startswith("/")]
    assert paths and all(Path(p).is_file() for p in paths)
    assert any("NOT FOUND n/a" in o.get("ok", {}).values() for o in ours if isinstance(o.get("ok"), dict))


def test_a_reference_not_cached_raises_under_local_mode(compat_cache, monkeypatch) -> None:
    """Never a path that does not exist, and no server contacted (CRDS_MODE=local): CrdsDownloadError.

    (The reference contacts its server here anyway and raises CrdsNetworkError offline.)
    """
    import crds_async

    for key, value in _env(compat_cache).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CRDS_SERVER_URL", "http://127.0.0.1:9")  # would refuse, were it asked
    monkeypatch.delenv("CRDS_READONLY_CACHE")
    parameters = _parameters(HST_DATASETS[1])
    with pytest.raises(crds_async.CrdsDownloadError, match="CRDS_MODE=local") as info:
        crds_async.getreferences(parameters, ["darkfile"], HST_CONTEXT, False, "hst")
    assert isinstance(info.value, crds_async.CrdsError)
    assert "127.0.0.1" not in str(info.value)


def test_exception_names_are_ours_and_the_references() -> None:
    from crds_async import errors

    for name, base in (("CrdsLookupError", errors.LookupFailure), ("CrdsDownloadError", errors.FetchError),
                       ("CrdsNetworkError", errors.FetchError),
                       ("CrdsUnknownInstrumentError", errors.UnknownInstrumentError)):
        cls = getattr(errors, name)
        assert issubclass(cls, base) and issubclass(cls, errors.CrdsError)
    assert issubclass(errors.CrdsLookupError, LookupError)


def main() -> None:
    import crds
    from crds.core import log

    log.set_verbose(False)
    log.warning = log.error = lambda *a, **k: None
    calls = json.loads(sys.stdin.read())
    sys.stdout.write("\n" + json.dumps(_run(crds, calls)) + "\n")


if __name__ == "__main__":
    main()
