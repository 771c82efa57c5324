"""Audit building blocks: RFC 9162 Merkle trees over the log and the layer state."""
