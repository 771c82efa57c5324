"""The embedded spiking network: turns activation vectors into weight deltas for a thermogram.

Each neuron holds a prototype (a unit vector in input space) and ``top_k`` outgoing
connections to neurons ``(i + k) mod n``, k = 1..top_k. One :meth:`EmbeddedSNN.process`
call is one tick (``t_ms = tick * 100``) and runs the crate's eight steps in its order
(ENGINE.md "Embedded spiking network"):

1. activation = max(0, cosine(input, prototype)) — one matrix-vector product;
2. competition: the neuron ranked r (by activation, stable) is scaled by
   ``1 - (r / n) * competition_strength * norepinephrine``;
3. spreading: ``act_j += acetylcholine * sum_i act_i * w_ij``;
4. spikes: ``act > spike_threshold``;
5. STDP on every connected ordered pair of distinct spiking neurons (Merge deltas);
   then, thermo's **FIX**, prototype learning (below);
6. every 100 ticks homeostasis scales each neuron's outgoing weights toward the target rate;
7. every 10 ticks weights decay; weights that fall away are deleted from the log;
8. traces and firing rates are updated.

Connectivity is an ``(n, top_k)`` array of weights (slot k of row i is the connection
i → (i+k+1) mod n) plus the same weights grouped by target, so step 3 is a gather and a
row sum whatever n is; every step is whole-array NumPy, with no Python loop over neurons
or connections. Python only touches the few deltas a tick emits. BLAS is used only for
cosines: one matrix-vector product per :meth:`EmbeddedSNN.process` call; in
:meth:`EmbeddedSNN.process_batch` one matrix product per 64 activations plus one column
for each prototype that learns, with BLAS held to one thread (see ``_one_blas_thread``).
(Small networks spread with one small matrix-vector product on a dense copy of the weights.)

**The cost of a tick.** The matrix-vector product covers only the leading prototype rows
that can hold a concept, in whole blocks of rows (``_count_product_rows``): the others are
zero and their cosine is +0.0. Past that product, a tick is some thirty NumPy
calls on short arrays, each costing its call overhead more than its arithmetic, so the
tick does each once and in place: it works in buffers allocated with the network (the
unit input, the centring step, the cosines, the activations — kept as
``last_activations`` —, the spikes), scalars are 0-d float32 arrays (a cheaper ufunc
operand than a NumPy scalar, the same float32 result), and work that cannot change
anything is skipped: spreading, homeostasis and decay while every weight is zero (adding
+0 leaves the non-negative activations as they are), and the ranking of step 2 when at
most one activation is positive (the top neuron's factor is exactly 1 and zeros stay
zero) — the usual case in a concept network, where an input resembles one concept. Each
shortcut gives the same float32 results, so the deltas and the saved state are bit for
bit those of the plain steps (``tests/operations/snn/test_golden_deltas.py``).

**Prototype learning (FIX).** The crate's prototypes never change, so its neurons keep
cosine ~0.05 to every input and nothing ever spikes at threshold 0.5. Here, when
``learn_prototypes`` is on and the rate ``eta = min(1, prototype_lr_scale * stdp_lr *
dopamine)`` is positive:

* if any neuron spiked, the spiking neuron with the highest cosine to the input (the
  winner) moves toward the unit input: ``p <- normalize(p + eta * (x̂ - p))``;
* if nothing spiked (the input is novel: no prototype is within the spike threshold),
  one neuron is recruited and set to ``x̂``: the least recently updated neuron, never-used
  neurons first, ties broken by the highest cosine. This is the cold start (every input
  is novel at first) and how new clusters are discovered; once all neurons are in use
  the longest-unused concept is recycled.

Only one prototype moves per tick (winner-take-all), so two clusters never pull the same
neuron into a useless average of both.

**Concept memory** (learned prototypes; :mod:`.concepts`). Every allocated neuron holds a
concept with a stable id; the thermogram sees it as the tensor entry ``snn/concept/<id>``.
Neurons start unallocated with a zero prototype, so they never spike; inputs are centred
by the running mean (``center``); a recruit writes a Create, a prototype that drifted past
``concept_tolerance`` an Update, and :meth:`EmbeddedSNN.flush_concepts` brings every used
concept's entry up to date (count and strength included). When every neuron is in use,
the two closest concepts merge (count-weighted) instead of a concept being overwritten:
the absorbed one gets a Delete and an ``snn_concept_merged`` event. Any two concepts may
associate: the connections are complete, start absent, and co-firing concepts a and b
write ``snn/assoc/<a>/<b>`` (a scalar F32 tensor, strength = the weight). Frozen
prototypes keep the crate's ring, random prototypes and ``weight_i_j`` keys.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any, cast

import numpy as np

from thermo_cli.config.clock import now_ns
from thermo_cli.errors import CorruptError, ValidationError
from thermo_cli.model import Delta, DeltaType, TensorSpec, Ternary
from thermo_cli.model import new_id as fast_id
from thermo_cli.operations.snn import config as C
from thermo_cli.operations.snn.arrays import decode_array, encode_array
from thermo_cli.operations.snn.concepts import (
    MERGE_EVENT,
    SOURCE_CONCEPT,
    ConceptBook,
    assoc_key,
    concept_key,
)
from thermo_cli.operations.snn.config import SNNConfig
from thermo_cli.operations.snn.neuromod import NeuromodState
from thermo_cli.operations.snn.rules import ternary_quantize, ternary_stdp

ENGINE_NAME = "EmbeddedSNN"
STATE_VERSION = 2
BATCH_CHUNK = 64
DENSE_MAX_NEURONS = 128
"""Up to this many neurons spreading uses a dense (n, n) copy of the weights: one small
matrix-vector product (1.4 us at n = 100) beats the gather (4 us); beyond, the gather
wins (16 us against 95 us at n = 1,000)."""
"""Activations whose cosines are computed together by one matrix product in a batch."""

SOURCE_STDP = "snn_stdp"
SOURCE_DECAY = "snn_decay"
SOURCE_TERNARY_STDP = "snn_ternary_stdp"
SOURCE_TERNARY_DECAY = "snn_ternary_decay"

COUNTERS = ("ticks_with_spikes", "spikes", "stdp_updates", "deletes", "prototype_updates", "recruits")
"""Lifetime totals kept in the state (for ``thermo snn stats`` and quality checks)."""
STATE_FIELDS = frozenset(
    {
        "engine",
        "version",
        "config",
        "seed",
        "tick",
        "neuromod",
        "counters",
        "prototypes",
        "weights",
        "live",
        "traces",
        "firing_rates",
        "last_activations",
        "last_learned",
        "concepts",
    }
)

_F32 = np.float32
_ZERO = np.zeros((), dtype=np.float32)
_RATE_KEEP = np.array(1.0 - C.RATE_ALPHA, dtype=np.float32)
_RATE_ALPHA = np.array(C.RATE_ALPHA, dtype=np.float32)
_RATE_ALPHA_SCALAR = np.float32(C.RATE_ALPHA)


def weight_key(i: int, j: int) -> str:
    """The thermogram key of the connection i → j, as the crate named it."""
    return f"weight_{i}_{j}"


class EmbeddedSNN:
    """A small spiking network with continuous or ternary weights; see the module docstring.

    Deterministic for a given ``seed`` (a NumPy ``Generator`` draws the initial
    prototypes; nothing random happens afterwards). ``seed=None`` draws a fresh seed,
    kept in :attr:`seed` and in the saved state.
    """

    def __init__(self, config: SNNConfig | None = None, seed: int | None = None) -> None:
        cfg = config if config is not None else SNNConfig()
        if not isinstance(cfg, SNNConfig):
            raise ValidationError(f"config: expected an SNNConfig, got {type(cfg).__name__}")
        if seed is None:
            seed = int(cast(int, np.random.SeedSequence().entropy) % (1 << 63))
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValidationError(f"seed: expected a non-negative integer, got {seed!r}")
        rng = np.random.default_rng(seed)
        n, d = cfg.num_neurons, cfg.input_dim
        self._setup(cfg, seed)
        if cfg.learn_prototypes:
            # concepts: no neuron holds one yet, so none can spike; no association exists yet
            self._protos = np.zeros((n, d), dtype=np.float32)
            self._weights = np.zeros((n, cfg.connections), dtype=np.float32)
        else:
            raw = rng.random((n, d), dtype=np.float32)
            raw -= _F32(0.5)
            raw *= _F32(2 * C.PROTOTYPE_INIT_RANGE)
            if cfg.use_ternary:
                initial: np.ndarray | np.float32 = ternary_quantize(C.INITIAL_WEIGHT, cfg.ternary_threshold)
            else:
                initial = _F32(C.INITIAL_WEIGHT)
            self._protos = _unit_rows(raw)
            self._weights = np.full((n, cfg.top_k), initial, dtype=np.float32)
        self._live = self._weights != 0
        self._rebuild_incoming()

    # --- construction helpers -------------------------------------------------------------

    def _setup(self, cfg: SNNConfig, seed: int) -> None:
        """Everything derived from the config, plus zeroed dynamic state."""
        n, k = cfg.num_neurons, cfg.connections
        self.config = cfg
        self.seed = seed
        self.neuromod = NeuromodState()
        self._tick = 0
        rows = np.arange(n)
        self._dst = (rows[:, None] + np.arange(1, k + 1)[None, :]) % n
        self._not_self = self._dst != rows[:, None]
        self._rank_frac = np.arange(n, dtype=np.float32) / _F32(n)
        self._traces = np.zeros(n, dtype=np.float32)
        self._rates = np.zeros(n, dtype=np.float32)
        self._last_act = np.zeros(n, dtype=np.float32)
        self._last_learned = np.full(n, -1, dtype=np.int64)
        self._src = (rows[:, None] - np.arange(1, k + 1)[None, :]) % n
        self._slots = np.arange(k)[None, :]
        self._rows = rows[:, None]
        self._incoming = np.zeros((n, k), dtype=np.float32)
        self._dense = np.zeros((n, n), dtype=np.float32) if n <= DENSE_MAX_NEURONS else None
        self._has_weights = False
        """False only while every weight is zero: spreading then adds exactly +0, so it is
        skipped, and so are homeostasis and decay while no weight is live either."""
        self._any_live = False
        self._key_table: list[dict[int, str]] | None = None
        self._edges = k > 0
        self._centring_on = cfg.learn_prototypes and cfg.center == "running"
        self._one_over_n = cfg.prototype_rate == "1/n"
        self._input_shape = (cfg.input_dim,)
        self._product_rows: int | None = None  # counted on the first tick (prototypes set later)
        # Per-tick work space, reused so a tick allocates nothing of input size: the unit
        # input, the centring step (later the prototype's move), the cosines, the negated
        # activations (for the ranking), the spread input, the spikes, and a 0-d operand
        # (a 0-d float32 array is a cheaper ufunc operand than a NumPy scalar, same result).
        self._unit_buf = np.zeros(cfg.input_dim, dtype=np.float32)
        self._step_buf = np.zeros(cfg.input_dim, dtype=np.float32)
        self._cos_buf = np.zeros(n, dtype=np.float32)
        self._neg_buf = np.zeros(n, dtype=np.float32)
        self._spread_buf = np.zeros(n, dtype=np.float32)
        self._spike_buf = np.zeros(n, dtype=bool)
        self._operand = np.zeros((), dtype=np.float32)
        self._touched: list[int] = []
        self._knob_cache: _Knobs | None = None
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.book: ConceptBook | None = ConceptBook(n, cfg.input_dim) if cfg.learn_prototypes else None
        self._events: list[tuple[int, str, dict[str, Any]]] = []
        self._emitted = 0
        self._winner = -1
        self.batch_winners = np.zeros(0, dtype=np.int64)
        """Concept id each row of the last :meth:`process_batch` went to (-1: none)."""

    def _rebuild_incoming(self) -> None:
        """The weights again in the layout spreading reads, after they changed as a whole.

        Small networks keep the dense ``(n, n)`` matrix ``_dense[i, j] = w_ij`` (rewritten in
        place; entries that are no connection stay zero); larger ones the weights by target,
        ``_incoming[j, k]`` the weight of (j-k-1) mod n → j.
        """
        if self._dense is not None:
            self._dense[self._rows, self._dst] = self._weights
        else:
            self._incoming = self._weights[self._src, self._slots]
        self._has_weights = bool(self._weights.any())
        self._any_live = bool(self._live.any())

    # --- read-only views ------------------------------------------------------------------

    @property
    def tick(self) -> int:
        """Ticks processed so far (one per activation)."""
        return self._tick

    @property
    def prototypes(self) -> np.ndarray:
        """Unit-norm prototypes, shape (num_neurons, input_dim) (a copy)."""
        return self._protos.copy()

    @property
    def weights(self) -> np.ndarray:
        """Connection weights, shape (num_neurons, top_k); slot k of row i is i → (i+k+1) mod n."""
        return self._weights.copy()

    @property
    def targets(self) -> np.ndarray:
        """Target neuron of every connection slot, shape (num_neurons, top_k)."""
        return self._dst.copy()

    @property
    def firing_rates(self) -> np.ndarray:
        return self._rates.copy()

    @property
    def traces(self) -> np.ndarray:
        return self._traces.copy()

    @property
    def last_activations(self) -> np.ndarray:
        return self._last_act.copy()

    @property
    def last_learned(self) -> np.ndarray:
        """Tick at which each prototype last moved (-1: never)."""
        return self._last_learned.copy()

    def weight(self, i: int, j: int) -> float | None:
        """Weight of the connection i → j, or None when the two are not connected."""
        n = self.config.num_neurons
        if not (0 <= i < n and 0 <= j < n):
            return None
        slots = np.flatnonzero(self._dst[i] == j)
        return float(self._weights[i, slots[0]]) if slots.size else None

    def set_prototypes(self, vectors: Any, neurons: Any = None) -> None:
        """Give neurons known prototypes (e.g. centroids from an earlier clustering).

        ``vectors`` is ``(m, input_dim)``; ``neurons`` lists the m neurons to set (default
        0..m-1). Rows are scaled to unit length; a zero row or a NaN is refused. The
        neurons count as just updated, so recruitment reuses them last.
        """
        n, d = self.config.num_neurons, self.config.input_dim
        rows = check_activations(vectors, d, single=False)
        idx = np.arange(rows.shape[0]) if neurons is None else np.asarray(neurons)
        if idx.dtype.kind not in "iu" or idx.shape != (rows.shape[0],):
            raise ValidationError(f"neurons: expected {rows.shape[0]} neuron indices")
        if idx.size and (idx.min() < 0 or idx.max() >= n or np.unique(idx).size != idx.size):
            raise ValidationError(f"neurons: indices must be distinct and within 0..{n - 1}")
        unit, ok = _unit_inputs(rows)
        if not ok.all():
            raise ValidationError(f"vectors: row {int(np.argmin(ok))} is all zeros")
        self._protos[idx] = unit
        self._product_rows = None
        self._last_learned[idx] = self._tick
        book = self.book
        if book is not None:  # each set neuron holds a concept (a new one if it had none)
            for neuron in idx.tolist():
                if book.ids[neuron] < 0:
                    book.allocate(neuron, self._tick)
                book.radius[neuron] = 1.0

    # --- processing -----------------------------------------------------------------------

    def process(
        self,
        activation: Any,
        neuromod: NeuromodState | None = None,
        *,
        timestamp_ns: int | None = None,
    ) -> list[Delta]:
        """One tick: the deltas this activation vector causes (see the module docstring).

        ``neuromod`` replaces the network's levels for this and later ticks (as the crate
        did); None keeps the current ones. Raises ValidationError (state untouched) for a
        wrong length or a NaN/infinite element.
        """
        xh = self._tick_input(activation, neuromod)
        cos = self._cos_buf
        if xh is None:
            cos.fill(0.0)
        else:
            rows = self._product_rows if self._product_rows is not None else self._count_product_rows()
            np.matmul(self._protos[:rows], xh, out=cos[:rows])
            cos[rows:] = 0.0  # rows past the last concept are zero: their cosine is +0.0
        return self._step(cos, xh, timestamp_ns)

    def _count_product_rows(self) -> int:
        """The leading prototype rows a tick's product must cover (kept in ``_product_rows``).

        A concept network fills neurons from the lowest free one, and a neuron without a
        concept has an all-zero prototype, whose cosine is +0.0 without computing it: with 8
        concepts among 100 neurons the product needs 16 rows, not 100 (about 3 µs instead of
        17). The count is rounded up to whole blocks of ``_ROW_BLOCK`` rows because BLAS
        matrix-vector kernels sum a block of rows together and a partial block another way:
        whole blocks give every row the bits the full product gives (the golden-delta test
        checks that, with the full product's digests). Recounted when prototypes are set
        from outside or loaded; a recruit past the count grows it.
        """
        used = self._protos.any(axis=1)
        if self.book is not None:
            used |= self.book.ids >= 0
        last = int(np.flatnonzero(used)[-1]) + 1 if used.any() else 0
        self._product_rows = _whole_blocks(last, self.config.num_neurons)
        return self._product_rows

    def _tick_input(self, activation: Any, neuromod: NeuromodState | None) -> np.ndarray | None:
        """The unit (centred) input of one tick, and the new neuromodulator levels in place.

        A float32 vector of the right length takes the fast path, in the work buffers and
        with one dot product: centred into ``_unit_buf`` first, and the running mean moved
        only once that vector proved finite (a NaN or infinity in the input shows there).
        Anything else, or a vector whose squares overflow, takes the full check, which
        names the first bad element. Both give the same numbers; the state is untouched
        until the input and ``neuromod`` are known to be good.
        """
        fast = (
            type(activation) is np.ndarray
            and activation.dtype == np.float32
            and activation.shape == self._input_shape
        )
        if not self._centring_on:
            if fast:
                squares = float(np.vdot(activation, activation))  # vdot: no overflow warning
                if 1e-30 < squares < 1e30:  # also false for NaN and inf
                    self._use_neuromod(neuromod)
                    return self._scaled(activation, squares)
            xh = self._unit_input(activation)
            self._use_neuromod(neuromod)
            return xh
        book = cast(ConceptBook, self.book)
        if fast:
            count = book.mean_count + 1
            step, centred, operand = self._step_buf, self._unit_buf, self._operand
            np.subtract(activation, book.mean, out=step)  # as ConceptBook.centre_one
            operand[()] = 1.0 - 1.0 / count
            np.multiply(step, operand, out=centred)
            squares = float(np.vdot(centred, centred))
            if math.isfinite(squares):
                self._use_neuromod(neuromod)
                book.mean_count = count
                operand[()] = 1.0 / count
                np.multiply(step, operand, out=step)
                np.add(book.mean, step, out=book.mean)
                if 1e-30 < squares < 1e30:
                    return self._scaled(centred, squares)
                return _unit_vector(centred)
        x = self._checked(activation)
        self._use_neuromod(neuromod)
        return _unit_vector(book.centre_one(x))

    def _scaled(self, x: np.ndarray, squares: float) -> np.ndarray:
        """``x`` divided by its length into ``_unit_buf`` (``x`` may be that buffer)."""
        self._operand[()] = 1.0 / math.sqrt(squares)
        return cast(np.ndarray, np.multiply(x, self._operand, out=self._unit_buf))

    def _use_neuromod(self, neuromod: NeuromodState | None) -> None:
        if neuromod is None:
            return
        if not isinstance(neuromod, NeuromodState):
            raise ValidationError(f"neuromod: expected a NeuromodState, got {type(neuromod).__name__}")
        self.neuromod = neuromod.copy()

    def _checked(self, activation: Any) -> np.ndarray:
        """The validated activation as a float32 vector (a finite float32 vector of sane
        magnitude passes with one dot product, as in :meth:`_unit_input`)."""
        if (
            type(activation) is np.ndarray
            and activation.dtype == np.float32
            and activation.shape == (self.config.input_dim,)
            and math.isfinite(float(np.vdot(activation, activation)))
        ):
            return cast(np.ndarray, activation)
        checked: np.ndarray = check_activations(activation, self.config.input_dim, single=True)[0]
        return checked

    def _unit_input(self, activation: Any) -> np.ndarray | None:
        """The validated activation scaled to unit length (None for the zero vector).

        A finite float32 vector of sane magnitude passes with one dot product; anything
        else takes the full check, which names the first bad element.
        """
        if (
            type(activation) is np.ndarray
            and activation.dtype == np.float32
            and activation.shape == (self.config.input_dim,)
        ):
            squares = float(np.vdot(activation, activation))  # vdot: no overflow warning
            if 1e-30 < squares < 1e30:  # also false for NaN and inf
                return activation * _F32(1.0 / math.sqrt(squares))
        x = check_activations(activation, self.config.input_dim, single=True)[0]
        return _unit_vector(x)

    def process_batch(
        self,
        activations: Any,
        neuromod: NeuromodState | None = None,
        *,
        neuromod_decay: float = 0.0,
        timestamp_ns: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Delta]:
        """Process many activations (rows) in order; the same dynamics as repeated :meth:`process`.

        The whole batch is validated before anything changes. Cosines are computed a chunk
        at a time with one matrix product; when a prototype learns mid-chunk only its
        column is recomputed for the rest of the chunk. ``neuromod_decay`` relaxes the
        levels toward baseline after every tick (a reward that fades). ``progress(k)`` is
        called after each chunk with the number of activations done.
        """
        batch = check_activations(activations, self.config.input_dim, single=False)
        if neuromod_decay:
            NeuromodState().decay(neuromod_decay)  # validates the rate before anything changes
        self._use_neuromod(neuromod)
        deltas: list[Delta] = []
        with _one_blas_thread():
            self._run_batch(batch, deltas, neuromod_decay, timestamp_ns, progress)
        return deltas

    def _run_batch(
        self,
        batch: np.ndarray,
        deltas: list[Delta],
        neuromod_decay: float,
        timestamp_ns: int | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        """The tick loop of :meth:`process_batch` (inputs already validated)."""
        winners = np.full(batch.shape[0], -1, dtype=np.int64)
        column = np.zeros(BATCH_CHUNK, dtype=np.float32)
        for start in range(0, batch.shape[0], BATCH_CHUNK):
            chunk = batch[start : start + BATCH_CHUNK]
            if self._centring_on:
                chunk = cast(ConceptBook, self.book).centre(chunk, learn=True)
            unit, ok = _unit_inputs(chunk)
            cosines = unit @ self._protos.T
            last = unit.shape[0] - 1
            for row in range(unit.shape[0]):
                xh = unit[row] if ok[row] else None
                deltas.extend(self._step(cosines[row], xh, timestamp_ns))
                if self._winner >= 0 and self.book is not None:
                    winners[start + row] = self.book.ids[self._winner]
                if self._touched and row < last:  # keep later cosines true to the moved prototypes
                    self._refresh_columns(cosines, unit, row + 1, column)
                if neuromod_decay:
                    self.neuromod.decay(neuromod_decay)
            if progress is not None:
                progress(unit.shape[0])
        self.batch_winners = winners

    def _refresh_columns(self, cosines: np.ndarray, unit: np.ndarray, first: int, column: np.ndarray) -> None:
        """Recompute the cosines of rows ``first:`` of a chunk with the prototypes that moved.

        One moved prototype (the usual case) is one matrix-vector product into ``column``,
        without copying the prototype; NumPy computes ``rows @ protos[[w]].T`` with the same
        matrix-vector product, so the cosines are the same bits.
        """
        moved = self._touched
        rows = unit[first:]
        if len(moved) == 1:
            out = column[: rows.shape[0]]
            np.matmul(rows, self._protos[moved[0]], out=out)
            cosines[first:, moved[0]] = out
        else:
            cosines[first:, moved] = rows @ self._protos[moved].T

    def _step(self, cos: np.ndarray, xh: np.ndarray | None, timestamp_ns: int | None) -> list[Delta]:
        """Steps 1-8 of one tick, given the cosines of the input to every prototype."""
        knobs = self._knobs()
        self._tick += 1
        tick = self._tick
        # the activations are computed in place in the array that keeps them after the tick
        act = np.maximum(cos, _ZERO, out=self._last_act)
        if knobs.competition is not None and self._ranking_matters(act):
            act[np.negative(act, out=self._neg_buf).argsort(kind="stable")] *= knobs.competition
        if knobs.spread and self._has_weights:
            spread = self._spread(act)
            np.multiply(spread, knobs.acetylcholine_operand, out=spread)
            np.add(act, spread, out=act)
        spiking = np.greater(act, knobs.threshold_operand, out=self._spike_buf)
        if knobs.threshold < 0 and self.book is not None:
            spiking &= self.book.ids >= 0  # a neuron without a concept never spikes
        spike_count = int(np.count_nonzero(spiking))
        stamp = _Stamp(timestamp_ns)
        deltas: list[Delta] = []
        edges = self._edges
        if spike_count >= 2 and edges:
            if self.book is None:
                self._stdp(spiking, deltas, stamp, knobs)
            else:  # associations: concepts the input itself resembles, not spikes spread to
                direct = spiking & (cos > knobs.threshold)
                if np.count_nonzero(direct) >= 2:
                    self._stdp(direct, deltas, stamp, knobs)
        self._touched = []
        self._winner = -1
        if self.book is not None and xh is not None and knobs.learns:
            self._learn_concept(cos, xh, knobs, deltas, stamp)
        if tick % C.HOMEOSTASIS_EVERY == 0 and edges:
            self._homeostasis()
        if tick % C.DECAY_EVERY == 0 and edges:
            self._decay(deltas, stamp)
        np.multiply(self._traces, knobs.trace_keep_operand, out=self._traces)
        np.add(self._traces, act, out=self._traces)
        np.multiply(self._rates, _RATE_KEEP, out=self._rates)
        if spike_count == 1:  # one neuron: a scalar float32 sum, the same as the masked one
            neuron = int(spiking.argmax())
            self._rates[neuron] += _RATE_ALPHA_SCALAR
        if spike_count > 1:
            np.add(self._rates, _RATE_ALPHA, out=self._rates, where=spiking)
        if spike_count:
            self.counters["ticks_with_spikes"] += 1
            self.counters["spikes"] += spike_count
        self._emitted += len(deltas)
        return deltas

    def _ranking_matters(self, act: np.ndarray) -> bool:
        """Whether competition can change ``act`` (which is ``>= +0``).

        The neuron ranked r is scaled by ``1 - (r / n) * strength``: the top one by exactly 1,
        and zeros stay zero (every factor is positive). With one positive activation or none,
        ranking changes nothing. Concept networks are mostly there (an input resembles one
        concept; neurons without a concept sit at zero), so they count first (one cheap pass)
        and skip the sort; frozen random prototypes leave about half the neurons positive,
        so they always rank.
        """
        return self.book is None or int(np.count_nonzero(act)) > 1

    def _knobs(self) -> _Knobs:
        """Per-tick constants derived from the config and neuromodulators (cached)."""
        nm = self.neuromod
        key = (nm.dopamine, nm.serotonin, nm.norepinephrine, nm.acetylcholine)
        if self._knob_cache is None or self._knob_cache.key != key:
            self._knob_cache = _Knobs(self.config, nm, self._rank_frac, key)
        return self._knob_cache

    def _spread(self, act: np.ndarray) -> np.ndarray:
        """sum_i act_i * w_ij for every neuron j (small networks: into ``_spread_buf``).

        A gather and a row sum (no BLAS) scale to any n; small networks use the dense copy.
        """
        if self._dense is not None:
            return np.matmul(act, self._dense, out=self._spread_buf)
        return cast(np.ndarray, np.einsum("jk,jk->j", act[self._src], self._incoming))

    def _stdp(self, spiking: np.ndarray, deltas: list[Delta], stamp: _Stamp, knobs: _Knobs) -> None:
        """Step 5: strengthen connections between co-firing neurons and log each change."""
        firing = np.flatnonzero(spiking)
        dst = self._dst[firing]
        pair_rows, slots = np.nonzero(spiking[dst] & self._not_self[firing])
        if pair_rows.size == 0:
            return
        rows = firing[pair_rows]
        cols = dst[pair_rows, slots]
        order = np.lexsort((cols, rows))  # the crate's order: pre ascending, then post ascending
        rows, slots, cols = rows[order], slots[order], cols[order]
        old = self._weights[rows, slots]
        if self.book is not None and not self.config.use_ternary:
            # a new association starts where the crate's connections start
            old = np.where(self._live[rows, slots], old, _F32(C.INITIAL_WEIGHT))
        if self.config.use_ternary:
            # Both neurons fired in this tick (t_ms = tick * 100 for each), so dt = 0.
            new = ternary_stdp(old, True, True, 0)
            changed = new != old
            rows, slots, cols, new = rows[changed], slots[changed], cols[changed], new[changed]
        else:
            new = np.clip(old + knobs.stdp_step, _F32(0.0), _F32(1.0))
        if rows.size == 0:
            return
        self._weights[rows, slots] = new
        self._live[rows, slots] = True
        self._has_weights = self._any_live = True
        if self._dense is not None:
            self._dense[rows, cols] = new
        else:
            self._incoming[cols, slots] = new
        self.counters["stdp_updates"] += int(rows.size)
        keys = self._edge_keys(rows, cols)
        deltas.extend(_merge_deltas(keys, new, self.config.use_ternary, stamp(), self.book is not None))

    def _edge_keys(self, rows: np.ndarray, cols: np.ndarray) -> list[str]:
        """Keys of connections i → j: associations of concept ids, or the crate's neuron slots."""
        if self.book is None:
            names = self._weight_keys()
            return [names[i][j] for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]
        ids = self.book.ids
        return [assoc_key(a, b) for a, b in zip(ids[rows].tolist(), ids[cols].tolist(), strict=True)]

    def _weight_keys(self) -> list[dict[int, str]]:
        """The crate's key of every connection, ``[i][j]`` for i → j (built once)."""
        if self._key_table is None:
            dst = self._dst.tolist()
            self._key_table = [{j: weight_key(i, j) for j in row} for i, row in enumerate(dst)]
        return self._key_table

    def _learn_concept(
        self,
        cos: np.ndarray,
        xh: np.ndarray,
        knobs: _Knobs,
        deltas: list[Delta],
        stamp: _Stamp,
    ) -> None:
        """Concept learning: the concept closest to the input, if within the spike threshold,
        moves toward it (and its entry is rewritten once it drifted past
        ``concept_tolerance``); otherwise the novel input becomes a new concept, after
        merging the two closest concepts if every neuron is in use.

        Recognition uses the cosine itself, not spikes that spreading added: an input is
        known when it resembles a concept, not when an associated concept is active.
        """
        book = cast(ConceptBook, self.book)
        tick = self._tick
        eta = knobs.eta
        best = int(cos.argmax())
        best_cos = float(cos[best])
        if best_cos > knobs.threshold_value and book.ids.item(best) >= 0:
            winner = best
            book.counts[winner] += 1
            book.last_seen[winner] = tick
            if self._one_over_n:
                eta = 1.0 / float(book.counts[winner])
            self._move(winner, xh, eta, best_cos)
            proto = self._protos[winner]
            if 1.0 - float(np.dot(proto, book.written[winner])) > self.config.concept_tolerance:
                deltas.append(book.write_current(winner, proto, stamp()))
            self._touched = [winner]
        else:
            free = np.flatnonzero(book.ids < 0)
            self._touched = []
            if free.size == 0:
                kept, winner = self._merge_closest(deltas, stamp)
                self._touched = [kept]
            else:
                winner = int(free[0])
            self._protos[winner] = xh
            if self._product_rows is not None and winner >= self._product_rows:
                self._product_rows = _whole_blocks(winner + 1, self.config.num_neurons)
            book.allocate(winner, tick)
            deltas.append(book.write(winner, self._protos[winner], DeltaType.CREATE, stamp()))
            self.counters["recruits"] += 1
            self._touched.append(winner)
        self._last_learned[winner] = tick
        self._winner = winner
        self.counters["prototype_updates"] += 1

    def _move(self, neuron: int, xh: np.ndarray, eta: float, cos: float) -> None:
        """m <- (1 - eta) m + eta x for the concept's mean m = radius * prototype (radius 1
        for a fixed rate, where the prototype is renormalised every step as before)."""
        book = cast(ConceptBook, self.book)
        r = float(book.radius[neuron]) if self._one_over_n else 1.0
        a = (1.0 - eta) * r
        norm = math.sqrt(max(a * a + eta * eta + 2.0 * a * eta * cos, 0.0))
        proto = self._protos[neuron]
        if norm > 1e-9:
            operand, toward = self._operand, self._step_buf
            operand[()] = a / norm
            np.multiply(proto, operand, out=proto)
            operand[()] = eta / norm
            np.add(proto, np.multiply(xh, operand, out=toward), out=proto)
            book.radius[neuron] = norm if self._one_over_n else 1.0
        else:
            proto[:] = xh
            book.radius[neuron] = 1.0

    def _merge_closest(self, deltas: list[Delta], stamp: _Stamp) -> tuple[int, int]:
        """Every neuron holds a concept: merge the two with the most similar prototypes.

        The more used one (older on a tie) keeps its id and becomes the count-weighted mean
        of both; the other's entry and associations get Deletes, an ``snn_concept_merged``
        event records it, and its neuron is returned free: (kept, freed).
        """
        book = cast(ConceptBook, self.book)
        gram = self._protos @ self._protos.T
        np.fill_diagonal(gram, -np.inf)
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(gram)), gram.shape))
        ci, cj = int(book.counts[i]), int(book.counts[j])
        kept, gone = (i, j) if (ci, -book.ids[i]) >= (cj, -book.ids[j]) else (j, i)
        ck, cg = int(book.counts[kept]), int(book.counts[gone])
        mean = (ck * book.radius[kept]) * self._protos[kept].astype(np.float64)
        mean += (cg * book.radius[gone]) * self._protos[gone].astype(np.float64)
        mean /= max(ck + cg, 1)
        length = float(np.linalg.norm(mean))
        if length > 0:
            self._protos[kept] = (mean / length).astype(np.float32)
        book.radius[kept] = length if self.config.prototype_rate == "1/n" and length > 0 else 1.0
        book.counts[kept] = ck + cg
        book.first_seen[kept] = min(int(book.first_seen[kept]), int(book.first_seen[gone]))
        book.last_seen[kept] = max(int(book.last_seen[kept]), int(book.last_seen[gone]))
        ts = stamp()
        deltas.append(book.write_current(kept, self._protos[kept], ts))
        kept_id, gone_id = int(book.ids[kept]), int(book.ids[gone])
        deltas.append(
            Delta(DeltaType.DELETE, concept_key(gone_id), b"", 1.0, ts, source=SOURCE_CONCEPT, id=fast_id())
        )
        self._cut_associations(gone, deltas, ts)
        self._events.append(
            (
                self._emitted + len(deltas),
                MERGE_EVENT,
                {
                    "kept": concept_key(kept_id),
                    "removed": concept_key(gone_id),
                    "neuron": gone,
                    "count": ck + cg,
                    "cosine": float(gram[i, j]),
                },
            )
        )
        book.release(gone)
        self._protos[gone] = 0.0
        self._traces[gone] = 0.0
        self._rates[gone] = 0.0
        return kept, gone

    def _cut_associations(self, neuron: int, deltas: list[Delta], ts: int) -> None:
        """Delete every live association from or to ``neuron`` (source ``snn_concept``: the
        concept is gone, the weight did not fade) and zero its connections."""
        slots = np.arange(self._weights.shape[1])
        rows = np.concatenate([np.full(slots.size, neuron), self._src[neuron]])
        cols = np.concatenate([slots, slots])
        live = self._live[rows, cols]
        rows, cols = rows[live], cols[live]
        if rows.size:
            keys = self._edge_keys(rows, self._dst[rows, cols])
            deltas.extend(
                Delta(DeltaType.DELETE, key, b"", 1.0, ts, source=SOURCE_CONCEPT, id=fast_id())
                for key in keys
            )
            self.counters["deletes"] += int(rows.size)
        self._weights[neuron] = 0.0
        self._weights[self._src[neuron], slots] = 0.0
        self._live[neuron] = False
        self._live[self._src[neuron], slots] = False
        self._rebuild_incoming()

    def flush_concepts(self, *, timestamp_ns: int | None = None) -> list[Delta]:
        """Deltas that make every concept entry equal the network: a Create for a concept
        never written, an Update for one whose prototype or count changed since its entry
        was written (strength from the new count). Empty for frozen prototypes."""
        book = self.book
        if book is None:
            return []
        stamp = _Stamp(timestamp_ns)
        out = []
        for neuron in book.stale(self._protos).tolist():
            out.append(book.write_current(neuron, self._protos[neuron], stamp()))
        self._emitted += len(out)
        return out

    def pop_events(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Events (kind, fields) to log, each after the first ``position`` deltas returned
        since the previous call; the list is cleared."""
        events, self._events, self._emitted = self._events, [], 0
        return events

    def assign(self, activations: Any) -> tuple[np.ndarray, np.ndarray]:
        """The concept each row is closest to by cosine, without learning anything.

        Returns (concept ids, cosines), -1 and 0.0 for a row with no concept to go to (a
        zero input after centring, or a network with no concept yet). Rows are centred by
        the network's running mean as it stands.
        """
        book = self.book
        if book is None:
            raise ValidationError("assign: frozen prototypes hold no concepts (learn_prototypes is off)")
        batch = check_activations(activations, self.config.input_dim, single=False)
        if self.config.center == "running":
            batch = book.centre(batch, learn=False)
        unit, ok = _unit_inputs(batch)
        alloc = np.flatnonzero(book.ids >= 0)
        ids = np.full(batch.shape[0], -1, dtype=np.int64)
        cosines = np.zeros(batch.shape[0], dtype=np.float32)
        if alloc.size == 0:
            return ids, cosines
        with _one_blas_thread():
            sims = unit @ self._protos[alloc].T
        best = sims.argmax(axis=1)
        ids[ok] = book.ids[alloc[best]][ok]
        cosines[ok] = sims[np.arange(batch.shape[0]), best][ok]
        return ids, cosines

    def _homeostasis(self) -> None:
        """Step 6: scale outgoing weights toward the target firing rate (continuous mode).

        Ternary weights are left alone: a multiplicative nudge of ±1 % cannot move a
        weight between -1, 0 and +1.
        """
        if self.config.use_ternary or not self._has_weights:
            return
        err = _F32(self.config.homeostasis_target) - self._rates
        gain = _F32(C.HOMEOSTASIS_GAIN) * _F32(self.neuromod.serotonin)
        self._weights *= (_F32(1.0) + err * gain)[:, None]
        np.clip(self._weights, _F32(0.0), _F32(1.0), out=self._weights)
        self._rebuild_incoming()

    def _decay(self, deltas: list[Delta], stamp: _Stamp) -> None:
        """Step 7: decay weights; delete a weight from the log once, when it falls away (FIX).

        The crate emitted a Delete for every zero weight on every decay tick (in ternary
        mode for every zero connection, i.e. all of them at start), flooding the log with
        deletions of keys already gone. A weight is *live* from its initial nonzero value
        or its last Merge until its Delete; only live weights found at zero get a Delete.
        """
        cfg = self.config
        if not self._has_weights and not self._any_live:
            return  # nothing to decay or delete (concepts before any association)
        decay = _F32(cfg.decay_rate) * (_F32(1.0) - _F32(self.neuromod.serotonin))
        if cfg.use_ternary:
            if decay > 0.5:
                self._weights[:] = 0.0  # one step toward zero lands every ±1 on 0
            fallen = self._weights == 0
            source = SOURCE_TERNARY_DECAY
        else:
            if decay:
                self._weights *= _F32(1.0) - decay
            fallen = self._weights < _F32(C.PRUNE_BELOW)
            self._weights[fallen] = 0.0
            source = SOURCE_DECAY
        self._rebuild_incoming()
        gone = fallen & self._live
        rows, slots = np.nonzero(gone)
        if rows.size == 0:
            return
        self._live[rows, slots] = False
        self._any_live = bool(self._live.any())
        self.counters["deletes"] += int(rows.size)
        ts = stamp()
        cols = self._dst[rows, slots]
        deltas.extend(
            Delta(DeltaType.DELETE, key, b"", 1.0, ts, source=source, id=fast_id())
            for key in self._edge_keys(rows, cols)
        )

    # --- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this network stands, CBOR-ready.

        Arrays are raw little-endian bytes with dtype and shape (see
        :mod:`thermo_cli.operations.snn.arrays`); ternary weights are stored as int8.
        """
        ternary = self.config.use_ternary
        return {
            "engine": ENGINE_NAME,
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "tick": self._tick,
            "neuromod": self.neuromod.to_dict(),
            "counters": dict(self.counters),
            "prototypes": encode_array(self._protos, "float32"),
            "weights": encode_array(self._weights, "int8" if ternary else "float32"),
            "live": encode_array(self._live, "bool"),
            "traces": encode_array(self._traces, "float32"),
            "firing_rates": encode_array(self._rates, "float32"),
            "last_activations": encode_array(self._last_act, "float32"),
            "last_learned": encode_array(self._last_learned, "int64"),
            "concepts": None if self.book is None else self.book.to_state(),
        }

    @classmethod
    def from_state(cls, state: Any) -> EmbeddedSNN:
        """Rebuild a network from :meth:`to_state` output; CorruptError names what is wrong."""
        what = "snn state"
        if not isinstance(state, dict):
            raise CorruptError(f"{what}: expected a map, got {type(state).__name__}")
        missing = sorted(STATE_FIELDS - set(state))
        extra = sorted(set(state) - STATE_FIELDS)
        if missing:
            raise CorruptError(f"{what}: missing field {missing[0]!r}")
        if extra:
            raise CorruptError(f"{what}: unknown field {extra[0]!r}")
        if state["engine"] != ENGINE_NAME:
            raise CorruptError(f"{what}: engine is {state['engine']!r}, expected {ENGINE_NAME!r}")
        if state["version"] != STATE_VERSION:
            raise CorruptError(
                f"{what}: version {state['version']!r} is not supported (expected {STATE_VERSION}; "
                "a version 1 network predates concept memory: attach a new one)"
            )
        try:
            cfg = SNNConfig.from_dict(state["config"], what=f"{what}: config")
            neuromod = NeuromodState.from_dict(state["neuromod"], what=f"{what}: neuromod")
        except ValidationError as exc:
            raise CorruptError(str(exc)) from None
        seed, tick = state["seed"], state["tick"]
        for name, value in (("seed", seed), ("tick", tick)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CorruptError(f"{what}: {name} must be a non-negative integer, got {value!r}")
        counters = state["counters"]
        if not isinstance(counters, dict) or set(counters) != set(COUNTERS):
            raise CorruptError(f"{what}: counters must have exactly {', '.join(COUNTERS)}")
        for name, value in counters.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CorruptError(f"{what}: counter {name} must be a non-negative integer")

        n, d, k = cfg.num_neurons, cfg.input_dim, cfg.connections
        net = cls.__new__(cls)
        net._setup(cfg, seed)
        net.neuromod = neuromod
        net._tick = tick
        net.counters = {name: counters[name] for name in COUNTERS}
        net._protos = decode_array(state["prototypes"], f"{what}: prototypes", dtype="float32", shape=(n, d))
        wdtype = "int8" if cfg.use_ternary else "float32"
        weights = decode_array(state["weights"], f"{what}: weights", dtype=wdtype, shape=(n, k))
        if cfg.use_ternary and not np.isin(weights, (-1, 0, 1)).all():
            raise CorruptError(f"{what}: weights: ternary weights must be -1, 0 or +1")
        if not cfg.use_ternary and not ((weights >= 0) & (weights <= 1)).all():
            raise CorruptError(f"{what}: weights: continuous weights must be within [0, 1]")
        net._weights = weights.astype(np.float32)
        net._live = decode_array(state["live"], f"{what}: live", dtype="bool", shape=(n, k))
        net._traces = decode_array(state["traces"], f"{what}: traces", dtype="float32", shape=(n,))
        net._rates = decode_array(state["firing_rates"], f"{what}: firing_rates", dtype="float32", shape=(n,))
        net._last_act = decode_array(
            state["last_activations"], f"{what}: last_activations", dtype="float32", shape=(n,)
        )
        net._last_learned = decode_array(
            state["last_learned"], f"{what}: last_learned", dtype="int64", shape=(n,)
        )
        if (net._last_learned < -1).any() or (net._last_learned > tick).any():
            raise CorruptError(f"{what}: last_learned must lie between -1 and the tick count")
        concepts = state["concepts"]
        if (concepts is None) != (not cfg.learn_prototypes):
            raise CorruptError(f"{what}: concepts must be present exactly when prototypes are learned")
        if concepts is not None:
            net.book = ConceptBook.from_state(concepts, n, d, tick, f"{what}: concepts")
        net._rebuild_incoming()
        return net


# --- helpers ------------------------------------------------------------------------------


_BLAS: list[Any] = []


def _one_blas_thread() -> Any:
    """Limit BLAS to one thread while a batch runs (when threadpoolctl is installed).

    A batch makes a small matrix product every 64 ticks; a threaded BLAS then keeps a
    worker thread spinning between calls, and on a machine whose other cores are busy
    every call waits for that worker to be scheduled (measured: 25 s instead of 1 s for
    8,000 ticks on a loaded 2-core machine). One thread is as fast for these sizes.
    """
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:
            _BLAS.append(None)
    controller = _BLAS[0]
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


class _Knobs:
    """Scalars and the competition factors for the current neuromodulator levels."""

    __slots__ = (
        "acetylcholine",
        "acetylcholine_operand",
        "competition",
        "eta",
        "key",
        "learns",
        "spread",
        "stdp_step",
        "threshold",
        "threshold_operand",
        "threshold_value",
        "trace_keep",
        "trace_keep_operand",
    )

    def __init__(
        self, cfg: SNNConfig, nm: NeuromodState, rank_frac: np.ndarray, key: tuple[float, ...]
    ) -> None:
        self.key = key
        strength = _F32(cfg.competition_strength) * _F32(nm.norepinephrine)
        # Rank r is scaled by 1 - (r / n) * strength, float32 as in the crate.
        self.competition = (_F32(1.0) - rank_frac * strength) if strength else None
        self.acetylcholine = _F32(nm.acetylcholine)
        self.spread = cfg.connections > 0 and bool(self.acetylcholine)
        self.threshold = _F32(cfg.spike_threshold)
        self.stdp_step = _F32(cfg.stdp_lr) * _F32(nm.dopamine)
        self.trace_keep = _F32(1.0 - cfg.trace_decay)
        # the same float32 values as 0-d arrays (cheaper ufunc operands) and a Python float
        self.acetylcholine_operand = np.array(self.acetylcholine)
        self.threshold_operand = np.array(self.threshold)
        self.threshold_value = float(self.threshold)
        self.trace_keep_operand = np.array(self.trace_keep)
        eta = cfg.prototype_lr_scale * cfg.stdp_lr * nm.dopamine
        self.eta = min(1.0, eta) if cfg.learn_prototypes else 0.0
        self.learns = cfg.learn_prototypes and (self.eta > 0.0 or cfg.prototype_rate == "1/n")


class _Stamp:
    """One timestamp per tick, taken only if the tick emits a delta."""

    __slots__ = ("_ns",)

    def __init__(self, ns: int | None) -> None:
        self._ns = ns

    def __call__(self) -> int:
        if self._ns is None:
            self._ns = now_ns()
        return self._ns


_SCALAR_F32 = TensorSpec("F32", ())
_SCALAR_I8 = TensorSpec("I8", ())


def _merge_deltas(keys: list[str], values: np.ndarray, ternary: bool, ts: int, tensors: bool) -> list[Delta]:
    """STDP Merge deltas; associations (``tensors``) say they are scalar tensors.

    Built in one list comprehension with positional arguments: an all-spiking tick logs a
    Merge for each of its 1,000 connections, so the cost per delta is the cost of the tick.
    """
    if not ternary:
        raw = values.astype("<f4").tobytes()
        spec = _SCALAR_F32 if tensors else None
        merge, source = DeltaType.MERGE, SOURCE_STDP
        chunks = [raw[at : at + 4] for at in range(0, len(raw), 4)]
        return [
            Delta(merge, key, chunk, w, ts, source, fast_id(), None, None, None, spec)
            for key, chunk, w in zip(keys, chunks, values.tolist(), strict=True)
        ]
    return list(_ternary_merge_deltas(keys, values, ts, tensors))


def _ternary_merge_deltas(keys: list[str], values: np.ndarray, ts: int, tensors: bool) -> Iterable[Delta]:
    """Ternary STDP Merge deltas: the weight's int8 code as value, strength and ternary."""
    spec = _SCALAR_I8 if tensors else None
    for key, code in zip(keys, values.astype(np.int8).tolist(), strict=True):
        yield Delta(
            DeltaType.MERGE,
            key,
            np.int8(code).tobytes(),
            float(code),
            ts,
            source=SOURCE_TERNARY_STDP,
            id=fast_id(),
            ternary=Ternary(code),
            tensor=spec,
        )


_ROW_BLOCK = 16
"""Rows a tick's matrix-vector product covers come in multiples of this (see
:meth:`EmbeddedSNN._count_product_rows`): OpenBLAS's kernels block rows by 4, 8 or 16."""


def _whole_blocks(rows: int, limit: int) -> int:
    """``rows`` rounded up to whole ``_ROW_BLOCK`` blocks, at most ``limit``."""
    return min(limit, -(-rows // _ROW_BLOCK) * _ROW_BLOCK)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (norms in float64 so huge values cannot overflow)."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    norms[norms == 0] = 1.0
    return cast(np.ndarray, (matrix / norms[:, None]).astype(np.float32))


def _unit_vector(x: np.ndarray) -> np.ndarray | None:
    """``x`` scaled to unit length, or None for the zero vector (x is finite float32)."""
    squares = float(np.vdot(x, x))
    if 1e-30 < squares < 1e30:  # the fast path cannot lose precision or overflow here
        return x * _F32(1.0 / math.sqrt(squares))
    unit, ok = _unit_inputs(x[None, :])
    return unit[0] if ok[0] else None


def _unit_inputs(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows of a finite float32 batch and which rows were nonzero."""
    squares = np.einsum("ij,ij->i", batch, batch)
    if ((squares > 1e-30) & (squares < 1e30)).all():  # the common case: one pass, float32
        return batch * (_F32(1.0) / np.sqrt(squares))[:, None], np.ones(batch.shape[0], dtype=bool)
    scale = np.abs(batch).max(axis=1) if batch.shape[1] else np.zeros(batch.shape[0], np.float32)
    ok = scale > 0
    scale[~ok] = 1.0
    scaled = batch / scale[:, None].astype(np.float32)  # max |x| = 1: squares cannot overflow
    return _unit_rows(scaled), ok


def check_activations(activations: Any, dim: int, *, single: bool) -> np.ndarray:
    """Activations as a C-contiguous float32 (m, dim) array, or ValidationError.

    The error names the vector and the element: ``activation 3, element 17: NaN``.
    Values that overflow float32 count as infinite.
    """
    what = "activation" if single else "activations"
    try:
        array = np.asarray(activations)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{what}: not a numeric array ({exc})") from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ValidationError(f"{what}: expected real numbers, got dtype {array.dtype}")
    if single:
        if array.ndim != 1:
            raise ValidationError(f"activation: expected a vector, got shape {array.shape}")
        array = array[None, :]
    elif array.ndim != 2:
        raise ValidationError(f"activations: expected shape (n, {dim}), got {array.shape}")
    if array.shape[1] != dim:
        raise ValidationError(f"{what}: vectors have {array.shape[1]} elements, the network expects {dim}")
    with np.errstate(over="ignore", invalid="ignore"):
        floats = np.ascontiguousarray(array, dtype=np.float32)
    bad = ~np.isfinite(floats)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        original = array[row, col]
        if np.isnan(original):
            kind = "NaN"
        elif np.isinf(original):
            kind = "+inf" if original > 0 else "-inf"
        else:
            kind = f"{float(original)!r} overflows float32"
        raise ValidationError(f"activation {row}, element {col}: {kind} (activations must be finite)")
    return floats
