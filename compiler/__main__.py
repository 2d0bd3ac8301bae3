"""`python -m compiler` is `kupe-policy`."""

from .cli import main

main()
