"""The benchmarks: each a module run from the repository root, ``python -m benchmarks.NAME [options]``.

``bench_search``, ``bench_signature``, ``bench_extract``, ``bench_memory``, ``bench_groundtruth`` (its
parts in ``_groundtruth_*``), ``bench_lr_battery``, and ``musicgen_large`` (MusicGen-Large on paper).
Their reports go to ``benchmarks/results/``; helpers shared with ``scripts`` are in ``lumina_tools``.
Each has a smoke test, ``tests/benchmarks/test_*``.
"""
