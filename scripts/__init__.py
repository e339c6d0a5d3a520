"""The scripts: each a module run from the repository root, ``python -m scripts.NAME [options]``.

``demo`` (``make demo``), ``gpu_check`` (its parts in ``gpu_check_*``), ``robustness``, ``separation``,
``pin_evidence``, and how the embedded checkpoints and golden vectors were made: ``make_tiny_checkpoint``,
``train_tiny``, ``make_golden``. Helpers shared with ``benchmarks`` are in ``lumina_tools``;
``check_wheel.sh`` is run as a file (``make check-wheel``).
"""
