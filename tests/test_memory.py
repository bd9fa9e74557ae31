"""seiscontrast.memory: with glibc, blocks freed by one batch are reused by the next instead of being unmapped and
page-faulted again (blocks of any size with ``every_block``); the picker turns it on; an environment variable turns
it off."""

import os
import platform
import subprocess
import sys

import pytest

from seiscontrast.memory import ENV

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only")

# Minor page faults of five rounds of allocating and freeing blocks of 4-20 MB (60 MB a round, as a forward pass
# does) or, with "large", of 40-200 MB (as training's activations at long windows).
SCRIPT = """
import resource, sys
import numpy as np
scale = 10 if sys.argv[2:] == ["large"] else 1
if sys.argv[1] in ("keep", "every_block"):
    from seiscontrast.memory import keep_freed_memory
    print(keep_freed_memory(every_block=sys.argv[1] == "every_block"))
elif sys.argv[1] == "picker":
    from seiscontrast.picker import SeisContrastPicker
    SeisContrastPicker.default()
def rounds(n):
    for _ in range(n):
        blocks = [np.ones(size * scale, dtype=np.float32) for size in (4 << 20, 3 << 20, 2 << 20, 5 << 20, 1 << 20)]
        del blocks
rounds(2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(5)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str, keep: str | None = None, large: bool = False) -> tuple[list[str], int]:
    env = {k: v for k, v in os.environ.items() if k != ENV and not k.startswith("MALLOC_")}
    if keep is not None:
        env[ENV] = keep
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode, *(["large"] if large else [])], env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.split()
    return lines[:-1], int(lines[-1])


def test_freed_memory_is_reused_not_faulted_again():
    _, default = page_faults("none")
    printed, kept = page_faults("keep")
    assert printed == ["True"]
    assert default > 2000            # 60 MB a round is 15 000 pages: glibc gives some of them back every round
    assert kept < default / 20


def test_every_block_also_keeps_blocks_above_32_mb():
    _, default = page_faults("none", large=True)
    _, kept = page_faults("keep", large=True)
    printed, every = page_faults("every_block", large=True)
    assert printed == ["True"]
    assert kept > default / 2        # above glibc's largest mmap threshold: still unmapped and faulted again
    assert every < default / 20


def test_picker_turns_it_on_and_the_environment_turns_it_off():
    _, default = page_faults("none")
    _, with_picker = page_faults("picker")
    _, opted_out = page_faults("picker", keep="0")
    printed, _ = page_faults("keep", keep="off")
    assert with_picker < default / 20
    assert opted_out > default / 2
    assert printed == ["False"]
