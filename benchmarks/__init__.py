"""minigraph's benchmark suite (issues 8, 13 and 15): ConvolutionTranspose against PyTorch and ONNX Runtime.

Entry point: ``python -m benchmarks`` (see :mod:`benchmarks.__main__`); ``make bench`` runs it with
the BLAS-tuning variables unset. Modules: :mod:`workloads` (what is measured), :mod:`timing`
(min-of-N timer, tracemalloc peak), :mod:`machine` (CPU, BLAS, threads, GEMM peak), :mod:`peers`
(PyTorch, ONNX Runtime), :mod:`ours` (the minigraph graphs), :mod:`convs`, :mod:`overhead`,
:mod:`sgd` (the measurements), :mod:`targets` (the issues' limits), :mod:`report`, :mod:`suite`.
"""
import minigraph  # noqa: F401  (before numpy, as the README advises: it sets OpenBLAS's idle spin, see minigraph.blas_threads)
