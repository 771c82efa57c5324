"""``python -m thermo_cli``: the ``thermo`` command."""

from thermo_cli.cli import main

if __name__ == "__main__":
    main()
