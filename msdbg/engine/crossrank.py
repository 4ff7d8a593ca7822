"""Cross-rank conditions: the same parameter or gradient compared between ranks at one step.

Data-parallel replicas must hold identical weights (same seed or checkpoint) and receive identical reduced
gradients. Tensors are compared by a content hash first; when hashes differ, the largest absolute difference is
computed chunk by chunk. Rank 0 (the lowest rank present) is the reference.
"""

from __future__ import annotations

import hashlib

import numpy as np

from msdbg.engine.evaluate import StepResult, pre_update_entry
from msdbg.engine.hits import Hit
from msdbg.engine.watchpoints import Watchpoint
from msdbg.errors import MsdbgError
from msdbg.store.dumpdir import TensorEntry
from msdbg.store.graph import Graph

CHUNK = 1 << 20


def content_hash(array: np.ndarray) -> str:
    """SHA-1 of the tensor's bytes in C order, read chunk by chunk."""
    digest = hashlib.sha1()
    flat = array.reshape(-1) if array.flags.c_contiguous else np.ascontiguousarray(array).reshape(-1)
    for start in range(0, flat.size, CHUNK):
        digest.update(np.ascontiguousarray(flat[start:start + CHUNK]).tobytes())
    return digest.hexdigest()


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| (NaN where exactly one side is NaN counts as infinite)."""
    worst = 0.0
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    for start in range(0, flat_a.size, CHUNK):
        x = np.asarray(flat_a[start:start + CHUNK], np.float64)
        y = np.asarray(flat_b[start:start + CHUNK], np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(x - y)
        mismatch_nan = np.isnan(x) != np.isnan(y)
        if mismatch_nan.any():
            return float("inf")
        diff = diff[~np.isnan(diff)]
        if diff.size:
            worst = max(worst, float(diff.max()))
    return worst


def _comparable(entries: list[TensorEntry], graph: Graph | None,
                category: str) -> dict[str, tuple[TensorEntry, TensorEntry]]:
    """Per parameter name: the entry to report and the entry whose values are compared. Weights are compared
    before this step's update when the dump holds that copy (so step 0 compares initial weights), else after;
    gradients as the optimizer received them."""
    found = {}
    for entry in entries:
        if entry.category != category or entry.param is None or entry.io != "output" or entry.slot != 0:
            continue
        if category == "weight" and not entry.file.is_parameter:
            continue
        data = (pre_update_entry(entry, entries, graph) or entry) if category == "weight" else entry
        found.setdefault(entry.param, (entry, data))
    return found


def evaluate_across_ranks(by_rank: dict[int, tuple[list[TensorEntry], Graph | None]],
                          watchpoints: list[Watchpoint]) -> StepResult:
    """Evaluate cross-rank watchpoints on one (net, graph, iteration) present in several ranks."""
    result = StepResult()
    ranks = sorted(by_rank)
    if len(ranks) < 2:
        return result
    reference_rank = ranks[0]
    for watchpoint in (w for w in watchpoints if w.condition.cross_rank):
        category = next(iter(watchpoint.condition.targets))
        tables = {rank: _comparable(entries, graph, category) for rank, (entries, graph) in by_rank.items()}
        found = []
        for param, reference in sorted(tables[reference_rank].items()):
            if watchpoint.target is not None and not watchpoint.target.matches(reference[0]):
                continue
            for rank in ranks[1:]:
                other = tables[rank].get(param)
                if other is None:
                    continue
                result.tensors_checked += 1
                try:
                    hit = _compare(watchpoint, reference, other, reference_rank)
                except MsdbgError as exc:
                    result.errors.append(str(exc))
                    continue
                if hit is not None:
                    found.append(hit)
        if found:
            min(found, key=lambda h: (h.entry.step.rank, h.entry.order)).first_offending = True
        result.hits.extend(found)
    return result


def _compare(watchpoint: Watchpoint, reference: tuple[TensorEntry, TensorEntry],
             candidate: tuple[TensorEntry, TensorEntry], reference_rank: int) -> Hit | None:
    """A hit on ``candidate``'s rank when its values differ from the reference rank's by more than the bound."""
    (_, reference_data), (shown, other_data) = reference, candidate
    a, b = reference_data.load(), other_data.load()
    when = " before this step's update" if other_data is not shown else ""
    if a.shape != b.shape:
        reason = f"shape {b.shape} on rank {shown.step.rank} but {a.shape} on rank {reference_rank}"
        return Hit(watchpoint.number, watchpoint.condition.name, shown, {"shape": list(b.shape)},
                   dict(watchpoint.params), (reason,))
    hash_a, hash_b = content_hash(a), content_hash(b)
    if hash_a == hash_b:
        return None
    worst = max_abs_diff(a, b)
    bound = watchpoint.params.get("max_abs_diff_gt", 0.0)
    if not worst > bound:
        return None
    stats = {"max_abs_diff": worst if np.isfinite(worst) else "inf", "sha1": hash_b,
             "reference_rank": reference_rank, "reference_sha1": hash_a}
    reason = (f"{shown.param}{when} differs from rank {reference_rank}: max |diff| {worst:.6g} > {bound:g}"
              f" (sha1 {hash_b[:10]} vs {hash_a[:10]})")
    return Hit(watchpoint.number, watchpoint.condition.name, shown, stats, dict(watchpoint.params), (reason,))
