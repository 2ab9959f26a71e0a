"""update_primary_header: astropy-compatible cards, data untouched, atomic under failure.

In-place editing, the journal and the file-safety policy: test_update_inplace.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from astropy.io import fits

from crds_async.errors import HeaderError
from crds_async.headers import read_header, update_primary_header
from crds_async.headers.update import journal_path, recover_interrupted_update
from tests.conftest import CORPUS


def _data_after_primary(path) -> bytes:
    return _data_after_primary_bytes(open(path, "rb").read())


@pytest.fixture
def dataset(tmp_path):
    source = sorted((CORPUS / "hst").glob("*.fits"))[5]
    target = tmp_path / source.name
    shutil.copy(source, target)
    os.chmod(target, 0o640)
    return target


def test_cards_equal_astropy_update_mode_and_data_is_untouched(dataset, tmp_path):
    cards = {"CRDS_CTX": "hst_0729.pmap", "BIASFILE": "iref$abc_bia.fits", "NEWKEY": "N/A",
             "DARKFILE": "iref$" + "x" * 60 + ".fits"}
    twin = tmp_path / "twin.fits"
    shutil.copy(dataset, twin)
    data_before = _data_after_primary(dataset)
    update_primary_header(dataset, cards)
    with fits.open(twin, mode="update", do_not_scale_image_data=True, checksum=False) as hdul:
        for key, value in cards.items():
            hdul[0].header[key] = value
    ours, theirs = fits.getheader(dataset, 0), fits.getheader(twin, 0)
    assert list(ours.items()) == list(theirs.items())
    assert [c.comment for c in ours.cards] == [c.comment for c in theirs.cards]
    assert _data_after_primary(dataset) == data_before
    assert read_header(dataset)["BIASFILE"] == "iref$abc_bia.fits"
    assert oct(os.stat(dataset).st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in dataset.parent.iterdir()) == sorted([dataset.name, "twin.fits"])


#: More cards than the corpus headers' free room: the header grows a block, so the file is rewritten.
OVERFLOW = {f"PAD{i:05d}": "x" * 60 for i in range(40)}


def test_a_failed_rename_leaves_the_original_and_no_temp_file(dataset, monkeypatch):
    before = dataset.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(HeaderError, match=f"{dataset.name}: cannot update"):
        update_primary_header(dataset, {"CRDS_CTX": "hst_0729.pmap", **OVERFLOW})
    assert dataset.read_bytes() == before
    assert [p.name for p in dataset.parent.iterdir()] == [dataset.name]


def test_sigkill_mid_update_never_leaves_a_half_file(dataset):
    """Kill a process that updates the same file in a loop; the file is always whole and valid."""
    original = dataset.read_bytes()
    update_primary_header(dataset, {"CRDS_CTX": "hst_0000.pmap"})
    code = (
        "import sys; from crds_async.headers import update_primary_header\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1; update_primary_header(sys.argv[1], {'CRDS_CTX': f'hst_{i:04d}.pmap', 'PAD': 'y' * (i % 60)})\n"
    )
    for delay in (0.6, 0.8, 1.0):
        proc = subprocess.Popen([sys.executable, "-c", code, str(dataset)])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        header = fits.getheader(dataset, 0)  # parses: never half written
        assert header["CRDS_CTX"].startswith("hst_")
        assert _data_after_primary(dataset) == _data_after_primary_bytes(original)
    for leftover in dataset.parent.glob("*.part-*"):
        leftover.unlink()  # a killed writer may leave its temp file beside the target, never the target
    recover_interrupted_update(dataset)  # a killed in-place writer may leave its journal: rolled back
    assert not os.path.exists(journal_path(dataset))
    assert fits.getheader(dataset, 0)["CRDS_CTX"].startswith("hst_")
    assert _data_after_primary(dataset) == _data_after_primary_bytes(original)


def _data_after_primary_bytes(raw: bytes) -> bytes:
    end = 0
    while True:
        block = raw[end:end + 2880]
        end += 2880
        if any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
            return raw[end:]


def test_not_fits_is_refused_with_the_file_name(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("hello")
    with pytest.raises(HeaderError, match="notes.fits"):
        update_primary_header(path, {"CRDS_CTX": "x"})
    assert path.read_text() == "hello"
