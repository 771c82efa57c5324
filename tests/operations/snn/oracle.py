"""A slow, loop-by-loop transcription of the crate's network, used as an oracle in tests.

It follows ENGINE.md step by step with Python loops over neurons and connections (what
the library must not do), with frozen prototypes, plus thermo's Delete and ternary FIXes,
so the vectorized network can be compared against it tick by tick.
"""

from __future__ import annotations

import math

import numpy as np

F = np.float32


class OracleSNN:
    def __init__(
        self,
        prototypes,
        top_k,
        *,
        stdp_lr=0.01,
        target=0.1,
        competition=0.5,
        decay_rate=0.001,
        trace_decay=0.1,
        threshold=0.5,
        ternary=False,
    ):
        self.p = [list(map(float, row)) for row in prototypes]
        self.n = len(self.p)
        self.k = top_k
        self.stdp_lr, self.target, self.competition = F(stdp_lr), F(target), F(competition)
        self.decay_rate, self.trace_decay, self.threshold = F(decay_rate), F(trace_decay), F(threshold)
        self.ternary = ternary
        init = F(0.0) if ternary else F(0.1)
        self.w = [[[(i + k) % self.n, init] for k in range(1, top_k + 1)] for i in range(self.n)]
        self.live = [[w != 0 for _, w in row] for row in self.w]
        self.traces = [F(0.0)] * self.n
        self.rates = [F(0.0)] * self.n
        self.tick = 0

    def process(self, x, da, ht, ne, ach):
        """Returns [(kind, key, value)] in emission order."""
        self.tick += 1
        out = []
        act = []
        for proto in self.p:
            dot = sum(a * b for a, b in zip(x, proto, strict=True))
            nx = math.sqrt(sum(a * a for a in x))
            npr = math.sqrt(sum(b * b for b in proto))
            act.append(F(max(0.0, dot / (nx * npr))) if nx > 0 and npr > 0 else F(0.0))
        strength = self.competition * F(ne)
        order = sorted(range(self.n), key=lambda i: -act[i])  # stable
        for rank, i in enumerate(order):
            act[i] = F(act[i] * (F(1.0) - (F(rank) / F(self.n)) * strength))
        spread = [F(0.0)] * self.n
        for i in range(self.n):
            for j, w in self.w[i]:
                spread[j] = F(spread[j] + act[i] * w)
        act = [F(a + s * F(ach)) for a, s in zip(act, spread, strict=True)]
        spiking = [i for i in range(self.n) if act[i] > self.threshold]
        for i in spiking:
            for j in spiking:
                if i == j:
                    continue
                for slot, (nb, w) in enumerate(self.w[i]):
                    if nb != j:
                        continue
                    if self.ternary:
                        new = F(min(1.0, w + 1.0))  # dt = 0: strengthen (FIX)
                        if new != w:
                            self.w[i][slot][1] = new
                            self.live[i][slot] = True
                            out.append(("merge", f"weight_{i}_{j}", int(new)))
                    else:
                        new = F(min(1.0, max(0.0, w + self.stdp_lr * F(da))))
                        self.w[i][slot][1] = new
                        self.live[i][slot] = True
                        out.append(("merge", f"weight_{i}_{j}", float(new)))
                    break
        if self.tick % 100 == 0 and not self.ternary:
            rate = F(0.01) * F(ht)
            for i in range(self.n):
                err = self.target - self.rates[i]
                for slot in range(self.k):
                    w = F(self.w[i][slot][1] * (F(1.0) + err * rate))
                    self.w[i][slot][1] = F(min(1.0, max(0.0, w)))
        if self.tick % 10 == 0:
            decay = self.decay_rate * (F(1.0) - F(ht))
            for i in range(self.n):
                for slot in range(self.k):
                    j, w = self.w[i][slot]
                    if self.ternary:
                        if decay > 0.5:
                            w = F(0.0)
                        fallen = w == 0
                    else:
                        w = F(w * (F(1.0) - decay))
                        fallen = w < F(0.01)
                        if fallen:
                            w = F(0.0)
                    self.w[i][slot][1] = w
                    if fallen and self.live[i][slot]:
                        self.live[i][slot] = False
                        out.append(("delete", f"weight_{i}_{j}", None))
        for i in range(self.n):
            self.traces[i] = F(self.traces[i] * (F(1.0) - self.trace_decay) + act[i])
            spiked = F(1.0) if i in spiking else F(0.0)
            self.rates[i] = F(self.rates[i] * F(0.9) + spiked * F(0.1))
        return out

    def weights(self):
        return np.array([[w for _, w in row] for row in self.w], dtype=np.float32)
