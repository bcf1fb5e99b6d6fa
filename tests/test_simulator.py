"""What the cuda backend changes on numba-cuda's simulator (loopnet/backends/simulator.py):
smaller blocks, a short thread switch interval during launches, and a lock on the
simulator's shared-array look-up."""

import contextlib
import sys
import threading
import time

import numba
import numpy as np
import pytest

from loopnet.backends import cuda_backend, drivers, simulator
from loopnet.optim import add_sum_of_squares

# (`NUMBA_ENABLE_CUDASIM=0 python -m pytest` on a GPU runs only the last test here)
simulated_only = pytest.mark.skipif(not drivers.cuda_simulated(), reason="about the CUDA simulator, which is off")


class SlowLookups(dict):
    """The simulator's table of a block's shared arrays, slow to answer: it widens the gap
    between a thread finding no array and storing the one it made, where a switch to another
    thread of the block lets that thread make a second array."""

    def get(self, key, default=None):
        found = super().get(key, default)
        time.sleep(0.2)  # (after looking: the answer is stale by the time the thread acts on it)
        return found

    def __contains__(self, key):
        found = super().__contains__(key)
        time.sleep(0.2)
        return found


def ask_at_once(shared, threads=2):
    got = []

    def ask():
        got.append(shared.array((4,), numba.float64))  # one line, as each thread of a kernel runs it

    started = [threading.Thread(target=ask) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return got


@simulated_only
def test_threads_of_a_block_asking_at_once_share_one_shared_array():
    cuda_backend.check_available()  # on the simulator, this puts the lock in
    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared(0)
    shared._allocations = SlowLookups()
    first, second = ask_at_once(shared)
    assert first is second and first.dtype == np.float64 and first.shape == (4,)


@simulated_only
def test_without_the_lock_the_simulator_gives_them_two_arrays(monkeypatch):
    # the control: the race the lock closes is real in the simulator's own code
    cuda_backend.check_available()
    from numba.cuda.simulator import kernelapi

    monkeypatch.setattr(kernelapi.FakeCUDAShared, "array", kernelapi.FakeCUDAShared.array.unlocked)
    assert not getattr(kernelapi.FakeCUDAShared.array, "loopnet_locked", False)
    shared = kernelapi.FakeCUDAShared(0)
    shared._allocations = SlowLookups()
    first, second = ask_at_once(shared)
    assert first is not second


@simulated_only
def test_each_line_still_has_its_own_shared_array():
    cuda_backend.check_available()
    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared(0)
    tile_a = shared.array((2, 3), numba.float32)
    tile_b = shared.array((2, 3), np.float32)
    assert tile_a is not tile_b and tile_a.dtype == tile_b.dtype == np.float32
    again = [shared.array((2,), numba.float64) for _ in range(2)]  # one line asked twice: one array
    assert again[0] is again[1] and again[0] is not tile_a


@simulated_only
def test_a_launch_switches_threads_often_and_puts_the_interval_back(monkeypatch):
    entered = []
    real = simulator.switching

    @contextlib.contextmanager
    def switching():
        with real():
            entered.append(sys.getswitchinterval())
            yield

    monkeypatch.setattr(simulator, "switching", switching)
    before = sys.getswitchinterval()
    cuda_backend.check_available()
    a = cuda_backend.adopt(np.zeros(5))
    cuda_backend.fill(a, 2.0)
    assert entered == [pytest.approx(simulator.SWITCH_INTERVAL)] and sys.getswitchinterval() == before
    assert cuda_backend.to_host(a).tolist() == [2.0] * 5


def test_the_interval_comes_back_when_a_launch_fails():
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError):
        with simulator.switching():
            assert sys.getswitchinterval() == pytest.approx(simulator.SWITCH_INTERVAL)
            raise RuntimeError("a kernel failed")
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("simulated, threads", [("1", cuda_backend.SIMULATOR_THREADS_PER_BLOCK),
                                                ("0", cuda_backend.THREADS_PER_BLOCK)])
def test_blocks_are_small_on_the_simulator_only(monkeypatch, simulated, threads):
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", simulated)
    assert cuda_backend.threads_per_block() == threads
    source = cuda_backend.driver_source(add_sum_of_squares, 0)  # a declared reduction: one block
    assert f"shared.array({threads}, " in source and f"reduce_step = {threads // 2}" in source
