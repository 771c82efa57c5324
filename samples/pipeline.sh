#!/bin/sh
# The README's first pipeline: a thermogram's life on the sample data.
#   sh samples/pipeline.sh [WORKDIR]      (WORKDIR defaults to a new temporary directory)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
f="$work/demo.thermo"
rm -f "$f"

thermo init "$f" --name demo                         # empty thermogram, default presets
thermo apply "$f" "$here/deltas.jsonl"               # 25 deltas: text, tensors, ternary, deletes
thermo consolidate "$f"                              # fold into hot, prune, crystallize to cold
thermo tick "$f"                                     # decay, promote/demote, prune
thermo verify "$f"                                   # every hash, link, chunk and state digest
thermo stats "$f"                                    # entries per layer, log, sizes
thermo get "$f" greeting                             # a value on stdout

# A file written by the Rust crate 0.4 reads (and verifies) as it is:
thermo get "$here/legacy-v0.4.thermo" greeting
thermo verify "$here/legacy-v0.4.thermo"
echo "pipeline done: $f"
