#!/usr/bin/env bash
# What a real GPU is needed for, in one command: run it from the repository root on a
# machine with an NVIDIA GPU and numba-cuda (the `device` tool's machines have both).
#
#     bash benchmarks/gpu_tests_and_bench.sh tests    # the whole suite on the GPU (NUMBA_ENABLE_CUDASIM=0)
#     bash benchmarks/gpu_tests_and_bench.sh bench    # the CUDA rows of `cli.py bench` (launch, matmul, MNIST step, epoch)
#     bash benchmarks/gpu_tests_and_bench.sh all      # both (the default)
#
# Logs go to $OUT (the device tool's folder that comes back) or to ./gpu-logs.
# The tests take a few minutes, the benchmarks about two: split them across calls where
# one call's time is short.
set -u
what=${1:-all}
out=${OUT:-gpu-logs}
mkdir -p "$out"
python=${PYTHON:-python}
export NUMBA_ENABLE_CUDASIM=0

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
  $python -c "import numba, numba.cuda as c, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__, 'gpu visible:', c.is_available())"
} 2>&1 | tee "$out/gpu-machine.txt"

status=0
if [ "$what" = tests ] || [ "$what" = all ]; then
  # -p no:cacheprovider: the working tree may be read-only or thrown away
  $python -m pytest -q -p no:cacheprovider --durations=15 2>&1 | tee "$out/gpu-tests.log" | tail -n 30
  status=${PIPESTATUS[0]}
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  $python -c "from loopnet.tools.bench_cuda import cuda_rows; cuda_rows()" 2>&1 | tee "$out/gpu-bench.log"
  [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
fi
exit "$status"
