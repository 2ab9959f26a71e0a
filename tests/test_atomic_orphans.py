"""A temp file left by a writer killed outright is removed by the next write of the same
target on the same machine; a live writer's, another target's and another host's are not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from crds_async.atomic import _OWNER, PART_MARK, atomic_write


def _killed_writer(target) -> str:
    """A process that opens ``target`` for writing, then is SIGKILLed: its temp file's name."""
    code = ("import sys, time\nfrom crds_async.atomic import atomic_output\n"
            "with atomic_output(sys.argv[1], 'w') as out:\n"
            "    out.write('half'); out.flush(); print('open', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    left = [p for p in os.listdir(target.parent) if p.startswith(f".{target.name}{PART_MARK}")]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return left[0]


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.json"
    orphan = _killed_writer(target)
    assert (tmp_path / orphan).exists() and not target.exists()
    other_host = tmp_path / f".out.json{PART_MARK}elsewhere-1-abcd"
    other_target = tmp_path / f".other.json{PART_MARK}{_OWNER}-999999999-abcd"
    live = tmp_path / f".out.json{PART_MARK}{_OWNER}-{os.getppid()}-abcd"  # a live process: its writer
    for path in (other_host, other_target, live):
        path.write_text("x")
    atomic_write(target, "whole\n")
    assert target.read_text() == "whole\n"
    assert not (tmp_path / orphan).exists()
    assert other_host.exists() and other_target.exists() and live.exists()
