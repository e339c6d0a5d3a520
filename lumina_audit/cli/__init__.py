"""Area ``cli``: the ``lumina-audit`` command, one thin module per command group.

Each command parses its options, calls the library and prints; nothing below this
package imports it. :func:`main` is the console script: it re-executes the process
under the numerical pins before torch can start (:mod:`.main`).

- :mod:`.signature`: ``signature``, ``golden check``, ``model digests``;
- :mod:`.keys`, :mod:`.manifest`, :mod:`.run`, :mod:`.ledger`, :mod:`.verify` (ledger, proof,
  certificate), :mod:`.report`, :mod:`.certificate` (with ``pki``);
- :mod:`._common`: output, shared options, passphrases, keys and the trust file.
"""

from __future__ import annotations

from .main import app, main

__all__ = ["app", "main"]
