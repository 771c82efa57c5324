"""The plasticity engine core: thermal layers, deltas, hash chain, consolidation."""
