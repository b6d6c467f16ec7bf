"""The schedule model of a variant: how a set of clients on one helper is sequenced and valued.

Local search and the large-neighbourhood search judge every candidate with ``HelperModel.values``
and return schedules built by ``HelperModel.fragments`` from the same rules, so a reported makespan
is always the makespan of the returned schedule. Per helper the best of the variant's rules is
kept (``VARIANT_RULES``): the non-preemptive list rules, and for the preemptive variant also the
preemptive delivery rule (non-preemptive schedules are feasible preemptive ones).

A *fragment* is one helper's part of a schedule: {client: (fwd pieces, bwd pieces)}.
"""

from __future__ import annotations

import numpy as np

from psl_core.helpers.instance import HelperInstance, Pieces, Schedule, check_variant
from psl_core.helpers.sequencing import (
    VARIANT_RULES,
    batch_list_schedule,
    batch_priority_schedule,
    batch_sequence_retime,
    delivery_priorities,
    helper_groups,
    pad_groups,
)

Fragment = dict[int, tuple[Pieces, Pieces]]


def _single(start: float, length: float) -> Pieces:
    return ((float(start), float(start + length)),)


class HelperModel:
    """Sequencing rules of one variant on one instance (see the module docstring)."""

    def __init__(self, instance: HelperInstance, variant: str) -> None:
        self.instance = instance
        self.variant = check_variant(variant)
        self.rules = VARIANT_RULES[variant]

    def _run(self, rule, members, mask, helpers, want_pieces=False):
        if rule == "preemptive_delivery":
            prio = delivery_priorities(self.instance, members, helpers)
            return batch_priority_schedule(self.instance, members, mask, helpers, prio, want_pieces)
        return batch_list_schedule(self.instance, members, mask, helpers, rule)

    def values(self, members: np.ndarray, mask: np.ndarray, helpers: np.ndarray) -> np.ndarray:
        """(B,) makespan of each row under the best rule of the variant."""
        return np.min([self._run(rule, members, mask, helpers)[-1] for rule in self.rules], axis=0)

    def assignment_values(self, assignment: np.ndarray) -> np.ndarray:
        """(H,) per-helper makespans of an assignment (0 for idle helpers)."""
        h = self.instance.num_helpers
        members, mask = pad_groups(helper_groups(assignment, h))
        return self.values(members, mask, np.arange(h))

    def fragments(self, groups: list[np.ndarray], helpers: np.ndarray) -> tuple[list[Fragment], np.ndarray]:
        """Schedule every (helper, clients) row with its best rule: (fragments, values)."""
        inst = self.instance
        members, mask = pad_groups(groups)
        helpers = np.asarray(helpers, dtype=int)
        results = [self._run(rule, members, mask, helpers, want_pieces=True) for rule in self.rules]
        values = np.stack([res[2] if len(res) == 4 else res[-1] for res in results])
        best = np.argmin(values, axis=0)  # first rule wins ties: deterministic
        out: list[Fragment] = []
        for b, (grp, h) in enumerate(zip(groups, helpers)):
            res, frag = results[best[b]], {}
            for i, j in enumerate(grp):
                j = int(j)
                if len(res) == 4:  # preemptive rule: pieces per task index
                    pieces = res[3][b]
                    frag[j] = (tuple(pieces[i]), tuple(pieces[members.shape[1] + i]))
                else:
                    fs, bs = res[0][b, i], res[1][b, i]
                    frag[j] = (_single(fs, inst.p_fwd[j, h]), _single(bs, inst.p_bwd[j, h]))
            out.append(frag)
        return out, values[best, np.arange(len(groups))]

    def retime_sequence(self, helper: int, sequence: list[tuple[str, int]]) -> tuple[Fragment, float]:
        """Non-preemptive fragment of one helper running ``sequence`` [("f"|"b", client)] in order."""
        clients = sorted({j for _, j in sequence})
        if not clients:
            return {}, 0.0
        pos = {j: i for i, j in enumerate(clients)}
        m = len(clients)
        order = np.array([[pos[j] + (m if kind == "b" else 0) for kind, j in sequence]])
        members = np.array([clients])
        fs, bs, value = batch_sequence_retime(
            self.instance, members, np.ones_like(members, bool), [helper], order
        )
        inst = self.instance
        frag = {
            j: (_single(fs[0, i], inst.p_fwd[j, helper]), _single(bs[0, i], inst.p_bwd[j, helper]))
            for i, j in enumerate(clients)
        }
        return frag, float(value[0])


def fragment_value(instance: HelperInstance, helper: int, fragment: Fragment) -> float:
    """Latest completion (backward end + tail) among the fragment's clients; 0 when empty."""
    return max((bwd[-1][1] + instance.tail[j, helper] for j, (_, bwd) in fragment.items()), default=0.0)


def assemble(instance: HelperInstance, fragments: list[Fragment]) -> Schedule:
    """One Schedule from the fragments of all helpers (every client must appear exactly once)."""
    k = instance.num_clients
    helper = np.full(k, -1, dtype=int)
    fwd: list = [()] * k
    bwd: list = [()] * k
    for h, frag in enumerate(fragments):
        for j, (f, b) in frag.items():
            helper[j], fwd[j], bwd[j] = h, f, b
    if np.any(helper < 0):
        raise ValueError(f"clients {np.flatnonzero(helper < 0).tolist()} have no helper")
    return Schedule(helper, tuple(fwd), tuple(bwd))


def split_fragments(schedule: Schedule, num_helpers: int) -> list[Fragment]:
    """The per-helper fragments of a schedule (inverse of ``assemble``)."""
    out: list[Fragment] = [{} for _ in range(num_helpers)]
    for j, h in enumerate(np.asarray(schedule.helper, dtype=int)):
        out[h][j] = (tuple(schedule.fwd_pieces[j]), tuple(schedule.bwd_pieces[j]))
    return out


def fragment_sequence(fragment: Fragment) -> list[tuple[str, int]]:
    """Task order of a fragment by piece start (for hints and retiming): [("f"|"b", client)]."""
    items = [(f[0][0], 0, "f", j) for j, (f, _) in fragment.items()]
    items += [(b[0][0], 1, "b", j) for j, (_, b) in fragment.items()]
    return [(kind, j) for _, _, kind, j in sorted(items)]
