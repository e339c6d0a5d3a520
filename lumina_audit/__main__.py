"""``python -m lumina_audit``: the same as the ``lumina-audit`` command."""

from .cli import main

main()
