"""--update-bestrefs file safety: in-place edits under a journal, and what is refused (issues #16, #17)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from crds_async.errors import HeaderError
from crds_async.headers import update as update_module
from crds_async.headers.update import journal_path, recover_interrupted_update, update_primary_header
from tests.conftest import CORPUS, ROOT

CARDS = {"CRDS_CTX": "hst_0729.pmap", "CRDS_VER": "1.0, crds_async, release", "BIASFILE": "iref$abc_bia.fits"}
#: More cards than the corpus headers' free room: the header grows a block, so the file is rewritten.
OVERFLOW = {f"PAD{i:05d}": "x" * 60 for i in range(40)}


def _header_length(raw: bytes) -> int:
    end = 0
    while True:
        block = raw[end:end + 2880]
        end += 2880
        if any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
            return end


def _data(path) -> bytes:
    raw = Path(path).read_bytes()
    return raw[_header_length(raw):]


def _astropy_update(path, cards) -> None:
    with fits.open(path, mode="update", do_not_scale_image_data=True, checksum=False) as hdul:
        for key, value in cards.items():
            hdul[0].header[key] = value


@pytest.fixture
def dataset(tmp_path):
    source = sorted((CORPUS / "hst").glob("*.fits"))[5]
    target = tmp_path / source.name
    shutil.copy(source, target)
    os.chmod(target, 0o644)
    return target


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())  # hidden files included


def test_the_in_place_path_keeps_the_inode_and_data_and_writes_what_astropy_writes(dataset, tmp_path):
    twin = tmp_path / "twin.fits"
    shutil.copy(dataset, twin)
    before, data = os.stat(dataset), _data(dataset)
    written = update_primary_header(dataset, CARDS)
    _astropy_update(twin, CARDS)
    after = os.stat(dataset)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert written is True
    assert dataset.read_bytes() == twin.read_bytes()
    assert _data(dataset) == data
    assert _names(tmp_path) == sorted([dataset.name, "twin.fits"])  # no journal left


def test_a_hard_link_sees_the_new_header(dataset, tmp_path):
    other = tmp_path / "other_name.fits"
    os.link(dataset, other)
    update_primary_header(dataset, CARDS)
    assert fits.getheader(other, 0)["CRDS_CTX"] == "hst_0729.pmap"
    assert os.stat(other).st_nlink == 2
    assert os.stat(other).st_ino == os.stat(dataset).st_ino


def test_a_hard_linked_file_that_needs_a_rewrite_is_refused(dataset, tmp_path):
    other = tmp_path / "other_name.fits"
    os.link(dataset, other)
    before = dataset.read_bytes()
    with pytest.raises(HeaderError, match=f"{dataset.name}: has 2 hard links"):
        update_primary_header(dataset, {**CARDS, **OVERFLOW})
    assert dataset.read_bytes() == other.read_bytes() == before
    assert os.stat(other).st_ino == os.stat(dataset).st_ino
    assert _names(tmp_path) == sorted([dataset.name, other.name])


@pytest.mark.parametrize("cards", [CARDS, {**CARDS, **OVERFLOW}], ids=["fits", "needs-rewrite"])
def test_a_read_only_file_is_refused_with_its_name(dataset, cards):
    os.chmod(dataset, 0o444)
    before, mtime = dataset.read_bytes(), os.stat(dataset).st_mtime_ns
    with pytest.raises(HeaderError, match=f"^{dataset}: read-only file"):
        update_primary_header(dataset, cards)
    assert dataset.read_bytes() == before
    assert os.stat(dataset).st_mtime_ns == mtime
    assert _names(dataset.parent) == [dataset.name]


def test_an_unchanged_dataset_is_not_touched(dataset):
    update_primary_header(dataset, CARDS)
    os.utime(dataset, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = os.stat(dataset)
    again, part = update_primary_header(dataset, CARDS), update_primary_header(dataset, {"CRDS_CTX": "hst_0729.pmap"})
    after = os.stat(dataset)
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)
    assert after.st_ino == before.st_ino
    assert (again, part) == (False, False)
    os.chmod(dataset, 0o444)  # nothing to write: a read-only dataset already up to date is no error
    assert update_primary_header(dataset, CARDS) is False


def test_a_value_of_another_type_is_not_taken_as_unchanged(dataset):
    value = str(fits.getheader(dataset, 0)["NEXTEND"])
    assert update_primary_header(dataset, {"NEXTEND": value}) is True  # an int card -> the string, as astropy
    assert fits.getheader(dataset, 0)["NEXTEND"] == value


def _set_xattr_or_skip(path, name, value):
    try:
        os.setxattr(path, name, value)
    except OSError as exc:
        pytest.skip(f"no user xattrs on {path.parent}: {exc}")


@pytest.mark.parametrize("cards", [CARDS, {**CARDS, **OVERFLOW}], ids=["in-place", "rewrite"])
def test_extended_attributes_are_kept(dataset, cards):
    _set_xattr_or_skip(dataset, "user.crds.origin", b"archive-42")
    update_primary_header(dataset, cards)
    assert fits.getheader(dataset, 0)["CRDS_CTX"] == "hst_0729.pmap"
    assert os.getxattr(dataset, "user.crds.origin") == b"archive-42"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_rewrite_keeps_mode_and_owner(dataset):
    os.chown(dataset, 12345, 23456)
    os.chmod(dataset, 0o604)
    inode, data = os.stat(dataset).st_ino, _data(dataset)
    update_primary_header(dataset, {**CARDS, **OVERFLOW})
    after = os.stat(dataset)
    assert after.st_ino != inode  # the header grew a block: rewritten and renamed over
    assert (after.st_uid, after.st_gid, oct(after.st_mode & 0o7777)) == (12345, 23456, oct(0o604))
    assert fits.getheader(dataset, 0)["PAD00039"] == "x" * 60
    assert _data(dataset) == data
    assert _names(dataset.parent) == [dataset.name]


def test_the_rewrite_leaves_a_dataset_changed_meanwhile_alone(dataset, monkeypatch):
    verify = update_module._verify

    def verify_then_someone_appends(*args):
        verify(*args)
        with open(dataset, "ab") as other_writer:
            other_writer.write(b"\0" * 2880)

    monkeypatch.setattr(update_module, "_verify", verify_then_someone_appends)
    before = dataset.read_bytes()
    with pytest.raises(HeaderError, match=f"{dataset.name}: changed while its header was being rewritten"):
        update_primary_header(dataset, {**CARDS, **OVERFLOW})
    assert dataset.read_bytes() == before + b"\0" * 2880  # the other writer's change is kept
    assert _names(dataset.parent) == [dataset.name]


def test_the_in_place_path_leaves_a_header_changed_meanwhile_alone(dataset, monkeypatch):
    write_journal = update_module._write_journal

    def journal_then_someone_edits(*args):
        write_journal(*args)
        _astropy_update(dataset, {"ROOTNAME": "someone"})  # astropy takes no lock

    monkeypatch.setattr(update_module, "_write_journal", journal_then_someone_edits)
    with pytest.raises(HeaderError, match=f"{dataset.name}: its header changed while being updated"):
        update_primary_header(dataset, CARDS)
    header = fits.getheader(dataset, 0)
    assert header["ROOTNAME"] == "someone" and "CRDS_CTX" not in header
    assert _names(dataset.parent) == [dataset.name]


def test_a_big_file_in_place_writes_only_header_bytes(tmp_path):
    """A 256 MB sparse dataset: a copy would write 256 MB and fill the holes; the header edit writes kB."""
    if not os.path.exists("/proc/self/io"):
        pytest.skip("no /proc/self/io to count written bytes")
    source = sorted((CORPUS / "hst").glob("*.fits"))[5]
    raw = source.read_bytes()
    header = raw[:_header_length(raw)]
    ext = fits.ImageHDU(data=None).header
    ext["BITPIX"], ext["NAXIS"], ext["NAXIS1"] = 8, 1, 256 << 20
    ext_bytes = ext.tostring(padding=True).encode("ascii")
    big = tmp_path / "big_raw.fits"
    with open(big, "wb") as out:
        out.write(header + ext_bytes)
        out.truncate(len(header) + len(ext_bytes) + (256 << 20) + 2880 - (256 << 20) % 2880)
        out.seek(-6, os.SEEK_END)
        out.write(b"TAIL!\n")
    before = os.stat(big)

    def written() -> int:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return int(fields["wchar"])

    start = written()
    update_primary_header(big, CARDS)
    spent = written() - start
    after = os.stat(big)
    assert spent < 5 * len(header)  # journal (old + new header) and the header itself
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert after.st_blocks <= before.st_blocks + 64  # holes not filled in: nothing was copied
    assert fits.getheader(big, 0)["CRDS_CTX"] == "hst_0729.pmap"
    with open(big, "rb") as handle:
        handle.seek(len(header))
        assert handle.read(len(ext_bytes)) == ext_bytes
        handle.seek(-6, os.SEEK_END)
        assert handle.read() == b"TAIL!\n"


# ---------------------------------------------------------------------------- crashes

_CRASH = """
import os, sys
from crds_async.headers import update as u

def crash(fd, new_bytes):
    cut = int(sys.argv[2])
    os.pwrite(fd, new_bytes[:cut], 0)
    os.fsync(fd)
    os._exit(9)  # as kill -9: no finally, no rollback

u._write_header = crash
u.update_primary_header(sys.argv[1], {"CRDS_CTX": "hst_9999.pmap", "DATE": "2099-01-01", "NEWKEY": "crashed"})
"""


def _crash_mid_write(path, cut: int) -> None:
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(path), str(cut)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr


def test_a_crash_mid_write_is_rolled_back_by_the_next_update(dataset, tmp_path, caplog):
    original = dataset.read_bytes()
    length = _header_length(original)
    _crash_mid_write(dataset, 2048)  # DATE (card 6) is new, the cards near END still old
    torn = dataset.read_bytes()
    assert os.path.exists(journal_path(dataset))
    assert torn[length:] == original[length:]
    assert torn[:2048] != original[:2048] and torn[2048:length] == original[2048:length]
    twin = tmp_path / "twin.fits"
    twin.write_bytes(original)
    _astropy_update(twin, CARDS)
    with caplog.at_level(logging.WARNING, logger="crds_async.headers.update"):
        assert update_primary_header(dataset, CARDS) is True
    assert f"{dataset}: rolled back an interrupted header update" in caplog.text
    assert dataset.read_bytes() == twin.read_bytes()  # the crashed update's cards are gone, these are in
    assert "NEWKEY" not in fits.getheader(dataset, 0)
    assert _names(tmp_path) == sorted([dataset.name, "twin.fits"])


def test_a_crash_after_the_journal_before_the_write_is_recovered_exactly(dataset, caplog):
    original = dataset.read_bytes()
    _crash_mid_write(dataset, 0)
    with caplog.at_level(logging.WARNING, logger="crds_async.headers.update"):
        assert recover_interrupted_update(dataset) is True
    assert "rolled back an interrupted header update" in caplog.text
    assert dataset.read_bytes() == original
    assert recover_interrupted_update(dataset) is False
    assert _names(dataset.parent) == [dataset.name]


def test_a_write_that_fails_is_rolled_back_at_once(dataset, monkeypatch):
    original = dataset.read_bytes()

    def half_then_fail(fd, new_bytes):
        os.pwrite(fd, new_bytes[:4096], 0)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(update_module, "_write_header", half_then_fail)
    with pytest.raises(HeaderError, match=f"{dataset.name}: cannot update the primary header"):
        update_primary_header(dataset, {**CARDS, "DATE": "2099-01-01"})
    assert dataset.read_bytes() == original
    assert _names(dataset.parent) == [dataset.name]


def _journal_for(dataset, cards) -> tuple[bytes, bytes]:
    raw = dataset.read_bytes()
    old = raw[:_header_length(raw)]
    header = fits.Header.fromstring(old.decode("ascii"))
    for key, value in cards.items():
        header[key] = value
    return old, header.tostring(padding=True).encode("ascii")


def test_a_journal_cut_short_is_removed_and_the_dataset_left_as_it_is(dataset, caplog):
    original = dataset.read_bytes()
    old, new = _journal_for(dataset, CARDS)
    Path(journal_path(dataset)).write_bytes(update_module._journal_record(old, new)[:-100])
    with caplog.at_level(logging.WARNING, logger="crds_async.headers.update"):
        assert recover_interrupted_update(dataset) is True
    assert "incomplete header-update journal" in caplog.text
    assert dataset.read_bytes() == original
    assert _names(dataset.parent) == [dataset.name]


def test_a_header_changed_by_someone_else_since_the_crash_is_not_rolled_back(dataset):
    old, new = _journal_for(dataset, CARDS)
    journal = Path(journal_path(dataset))
    journal.write_bytes(update_module._journal_record(old, new))
    _astropy_update(dataset, {"ROOTNAME": "someone"})
    changed = dataset.read_bytes()
    changed_since = f"{dataset.name}: its header changed since an interrupted update.*{journal.name}"
    with pytest.raises(HeaderError, match=changed_since):
        update_primary_header(dataset, CARDS)
    assert dataset.read_bytes() == changed
    assert journal.exists()
