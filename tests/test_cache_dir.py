"""The kernel cache is a convenience, never a reason for a run to fail (issue 14, items 4,
9 and 17): an unusable cache directory means compiling in memory with one line of warning,
a damaged driver file is rewritten, and cache files are readable like any cache."""

import os
import stat
import subprocess
import sys

import pytest

from loopnet.backends import drivers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trace_on_numba(cache_dir):
    env = dict(os.environ, LOOPNET_CACHE_DIR=cache_dir)
    return subprocess.run([sys.executable, "cli.py", "trace", "least-squares", "--backend", "numba", "--format", "json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["a file", "not utf-8"])
def test_an_unusable_cache_directory_means_compiling_in_memory_with_one_warning(tmp_path, kind):
    if kind == "a file":
        cache = tmp_path / "cache"
        cache.write_text("I am a file")
        cache = str(cache)
    else:
        cache = str(tmp_path) + "/caf\udce9"  # the byte 0xE9 (Latin-1 e-acute), surrogate-escaped
    result = trace_on_numba(cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{"nodes"') and "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cannot use the kernel cache" in line]
    assert len(warnings) == 1 and "set LOOPNET_CACHE_DIR to a writable directory" in warnings[0]


def test_warmup_without_a_usable_cache_is_one_line(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("I am a file")
    result = subprocess.run([sys.executable, "cli.py", "warmup"], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, LOOPNET_CACHE_DIR=str(cache)), timeout=120)
    assert result.returncode == 1 and "error: warmup fills the kernel cache" in result.stderr


def body_for_test(i, x, y):
    y[i] = x[i] + 1


def test_a_damaged_driver_file_is_rewritten_and_new_ones_are_not_private(tmp_path):
    source = "def drive():\n    return 42\n"
    assert drivers.load(body_for_test, source, str(tmp_path), "loopnet_test")() == 42
    (path,) = [tmp_path / name for name in os.listdir(tmp_path) if name.endswith(".py")]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.write_text("def drive():\n    return 1e232\n")  # damaged: edited, or cut short
    assert drivers.load(body_for_test, source, str(tmp_path), "loopnet_test")() == 42
    assert path.read_text() == source
    path.write_text(source[:10])
    assert drivers.load(body_for_test, source, str(tmp_path), "loopnet_test")() == 42


@pytest.mark.parametrize("damage", ["garbage", "empty"])
def test_damaged_numba_cache_files_are_a_miss_not_a_crash(tmp_path, damage):
    import json

    cache = str(tmp_path / "cache")
    first = trace_on_numba(cache)
    assert first.returncode == 0, first.stderr
    damaged = 0
    for directory, _, files in os.walk(cache):
        for name in files:
            if name.endswith((".nbi", ".nbc")):
                with open(os.path.join(directory, name), "wb") as f:
                    f.write(os.urandom(200) if damage == "garbage" else b"")
                damaged += 1
    assert damaged
    healed = trace_on_numba(cache)
    assert healed.returncode == 0 and "Traceback" not in healed.stderr and "Aborted" not in healed.stderr, healed.stderr
    assert json.loads(healed.stdout) == json.loads(first.stdout)
    assert healed.stderr.count("a damaged entry in the kernel cache was dropped") == 1
    again = trace_on_numba(cache)
    assert again.returncode == 0 and again.stderr == ""  # rewritten: loaded from the cache, silently
