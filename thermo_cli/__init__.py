"""thermo: thermograms — plastic memory capsules with four temperature layers.

The library never prints or exits; errors are :mod:`thermo_cli.errors` classes.
"""

__version__ = "0.1.0"
