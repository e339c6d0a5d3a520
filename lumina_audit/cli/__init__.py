"""Area ``cli``: the ``lumina-audit`` command, one thin module per command group.

Each command parses its options, calls the library and prints; nothing below this
package imports it. Its one public name is :func:`main`, the console script: it re-executes the process
under the numerical pins before torch can start (:mod:`.main`).

- :mod:`.signature`: ``signature compute``, ``golden check``, ``model digests``;
- :mod:`.derive` (``audio derive``), :mod:`.customize` (``model customize``), :mod:`.keys`, :mod:`.manifest`,
  :mod:`.run` (``manifest run``), :mod:`.ledger`, :mod:`.verify` (``ledger verify``, ``proof verify``,
  ``certificate verify``), :mod:`.report`, :mod:`.calibration`, :mod:`.certificate` (with ``pki``);
- :mod:`._grammar`: noun then verb, and the old spellings as hidden aliases that say so in one line;
- :mod:`.reference`: ``docs/cli.md``, generated from the commands (``make cli-docs``);
- :mod:`._common`: output, shared options, passphrases, keys and the trust file.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
