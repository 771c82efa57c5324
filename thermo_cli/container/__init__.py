"""The ``.thermo`` container format v2 (normative description: ``spec/FORMAT.md``).

One module per concern: :mod:`layout` (magic, version, prefix, footer), :mod:`limits`
(safety caps), :mod:`chunks` (byte-shuffle + bounded zstd), :mod:`blocks` (block
references, typed field access), :mod:`index` and :mod:`directory` (key-range table,
entry rows, data streams), :mod:`logseg` (record frames), :mod:`metablock`,
:mod:`trailer`, :mod:`reader`, :mod:`lazy`, :mod:`materialize`, :mod:`writer`,
:mod:`fileops` (locks, atomic rename, durable append). Verification is
:mod:`thermo_cli.operations.audit.verify`'s, over :class:`reader.Reader`. Applications use
:mod:`thermo_cli.store`, not these modules.
"""
