"""Quality of 重复信访 (repeat petition) detection: ``python bench/repeat_quality.py [--pairs 2000] [--seed 20261122]``.

Generates the labelled pairs of :mod:`intake_svc.domain.repeat_corpus`, runs
:class:`~intake_svc.domain.similarity.MatterMatcher` (and, side by side, the matcher with its
synonym table switched off and a naive baseline: ``difflib.SequenceMatcher`` ratio ≥ 0.6 on the
raw text and the same category code), and prints precision, recall, F1, confusion counts, the
break-down by variant kind and the time per compare.

MatterMatcher's defaults (``threshold``, ``min_text``) were chosen with ``--tune``, a grid on
the separate tuning seed (``repeat_corpus.TUNING_SEED``), never on the evaluation seed: the
highest F1 among settings with precision ≥ 0.99 and at most 5 % of the same-second-level near
misses let through (a wrongly flagged repeat can cost a petitioner the acceptance of a new
matter; a missed one costs a registrar a manual link).
"""
from __future__ import annotations

import argparse
import difflib
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from intake_svc.domain.repeat_corpus import EVAL_SEED, KINDS, TUNING_SEED, LabelledPair, generate_pairs  # noqa: E402
from intake_svc.domain.similarity import DEFAULT_MIN_TEXT, DEFAULT_THRESHOLD, Matter, MatterMatcher  # noqa: E402

Judge = Callable[[Matter, Matter], bool]
MIN_PRECISION = 0.99
#: Most of the same-second-level near misses (same person, place and category code, another
#: matter) the tuning may let through: there the text alone must decide.
MAX_HARD_FPR = 0.05


def is_hard(pair: LabelledPair) -> bool:
    return pair.kind.startswith("near_miss") and pair.new.category_code == pair.earlier.category_code


def baseline(new: Matter, earlier: Matter) -> bool:
    """The naive measure: same category code and difflib ratio ≥ 0.6 on the raw text."""
    return new.category_code == earlier.category_code and \
        difflib.SequenceMatcher(None, new.text, earlier.text).ratio() >= 0.6


def confusion(pairs: list[LabelledPair], verdicts: list[bool]) -> dict[str, float]:
    tp = sum(p.same_matter and v for p, v in zip(pairs, verdicts, strict=True))
    fp = sum(not p.same_matter and v for p, v in zip(pairs, verdicts, strict=True))
    fn = sum(p.same_matter and not v for p, v in zip(pairs, verdicts, strict=True))
    tn = len(pairs) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"P": precision, "R": recall, "F1": f1, "TP": tp, "FP": fp, "FN": fn, "TN": tn}


def timed(judge: Judge, pairs: list[LabelledPair]) -> tuple[list[bool], float]:
    """Verdicts and the mean µs per compare."""
    start = time.perf_counter()
    verdicts = [judge(p.new, p.earlier) for p in pairs]
    return verdicts, (time.perf_counter() - start) / len(pairs) * 1e6


def report(pairs: list[LabelledPair], seed: int, threshold: float, min_text: float) -> None:
    matcher = MatterMatcher(threshold, min_text=min_text)
    matcher.compare(pairs[0].new, pairs[0].earlier)  # warm-up: loads jieba once (~1 s)
    plain = MatterMatcher(threshold, min_text=min_text, synonyms={})
    methods: dict[str, Judge] = {
        "MatterMatcher": lambda a, b: matcher.compare(a, b).same_matter,
        "MatterMatcher, no synonym table": lambda a, b: plain.compare(a, b).same_matter,
        "baseline: difflib>=0.6 + same category": baseline,
    }
    results = {name: timed(judge, pairs) for name, judge in methods.items()}
    positives = sum(p.same_matter for p in pairs)
    print(f"重复信访 detection: {len(pairs)} labelled pairs ({positives} same matter), evaluation seed {seed}; "
          f"threshold {threshold:.2f}, min_text {min_text:.2f} (chosen on tuning seed {TUNING_SEED})")
    print()
    print(f"{'method':<40} {'precision':>9} {'recall':>7} {'F1':>6} {'TP':>5} {'FP':>5} {'FN':>5} {'TN':>5}")
    for name, (verdicts, _) in results.items():
        c = confusion(pairs, verdicts)
        print(f"{name:<40} {c['P']:>9.3f} {c['R']:>7.3f} {c['F1']:>6.3f} "
              f"{c['TP']:>5} {c['FP']:>5} {c['FN']:>5} {c['TN']:>5}")
    print()
    print("judged 'same matter', by variant kind (label same: want all; different: want none):")
    print(f"{'kind':<26} {'label':<9} {'pairs':>5}" + "".join(f" {s:>16}" for s in ("matcher", "no synonyms",
                                                                                   "baseline")))
    groups = [(kind, [i for i, p in enumerate(pairs) if p.kind == kind]) for kind in KINDS]
    groups.append(("  of which same 2nd-level", [i for i, p in enumerate(pairs) if is_hard(p)]))
    for kind, idx in groups:
        if idx:
            label = "same" if pairs[idx[0]].same_matter else "different"
            cells = [sum(verdicts[i] for i in idx) for verdicts, _ in results.values()]
            print(f"{kind:<26} {label:<9} {len(idx):>5}" + "".join(f" {c:>5} ({c / len(idx):6.1%})" for c in cells))
    print()
    timing(pairs, matcher, results["baseline: difflib>=0.6 + same category"][1])


def best_us(fn: Callable[[], object], reps: int, rounds: int = 3) -> float:
    """The best of ``rounds`` mean µs per call over ``reps`` calls (the machine may be shared)."""
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        means.append((time.perf_counter() - start) / reps * 1e6)
    return min(means)


def timing(pairs: list[LabelledPair], matcher: MatterMatcher, baseline_us: float) -> None:
    """µs per compare with text features cached, and cold (both texts analysed in the compare)."""
    lengths = [len(p.new.text) for p in pairs]
    cold = MatterMatcher(matcher.threshold, min_text=matcher.min_text, cache_size=0)
    sample = pairs[:300]
    cached_us = best_us(lambda: [matcher.compare(p.new, p.earlier) for p in sample], 1) / len(sample)
    cold_us = best_us(lambda: [cold.compare(p.new, p.earlier) for p in sample], 1) / len(sample)
    print(f"time per compare (texts {min(lengths)}–{max(lengths)} chars, mean {sum(lengths) / len(lengths):.0f}; "
          "best of 3 rounds):")
    print(f"  {'MatterMatcher, features cached':<44} {cached_us:>8.1f} µs")
    print(f"  {'MatterMatcher, cold (both texts analysed)':<44} {cold_us:>8.1f} µs")
    print(f"  {'baseline difflib (one pass)':<44} {baseline_us:>8.1f} µs")
    corpus = "。".join(p.new.text for p in pairs[:200])
    for n in (300, 1000, 2000):
        a, b = Matter("411302", "0306", "03", corpus[:n]), Matter("411302", "0306", "03", corpus[n // 2:n // 2 + n])
        matcher.compare(a, b)
        warm_us = best_us(lambda a=a, b=b: matcher.compare(a, b), 100)
        cold_n_us = best_us(lambda a=a, b=b: cold.compare(a, b), 3)
        print(f"  two {n}-char texts: cached {warm_us:>7.1f} µs, cold {cold_n_us:>8.1f} µs")
    earlier = [(str(i), p.earlier) for i, p in enumerate(pairs[1:21])]
    registration_us = best_us(lambda: MatterMatcher(matcher.threshold, min_text=matcher.min_text).best_match(
        pairs[0].new, earlier), 1)
    print(f"  registration: best_match against 20 earlier petitions, fresh matcher (each text analysed once): "
          f"{registration_us / 1e3:.2f} ms")


def tune(n_pairs: int) -> tuple[float, float]:
    """Grid over (min_text, threshold) on the tuning seed: the best F1 with precision ≥ MIN_PRECISION."""
    pairs = generate_pairs(n_pairs, TUNING_SEED)
    matcher = MatterMatcher(0.0, min_text=0.0)
    results = [matcher.compare(p.new, p.earlier) for p in pairs]
    hard = [i for i, p in enumerate(pairs) if is_hard(p)]
    best: tuple[float, float, float] | None = None
    print(f"tuning on seed {TUNING_SEED}, {len(pairs)} pairs; best threshold per text floor:")
    for min_text in (0.0, 0.05, 0.10, 0.15, 0.20, 0.25):
        row: tuple[float, float, dict[str, float]] | None = None
        for step in range(10, 91):
            th = step / 100
            verdicts = [r.same_matter and r.components["text"] >= min_text and r.score >= th for r in results]
            c = confusion(pairs, verdicts)
            c["hard_fpr"] = sum(verdicts[i] for i in hard) / max(1, len(hard))
            if c["P"] >= MIN_PRECISION and c["hard_fpr"] <= MAX_HARD_FPR and (row is None or c["F1"] > row[1]):
                row = (th, c["F1"], c)
        if row:
            th, f1, c = row
            print(f"  min_text {min_text:.2f}: threshold {th:.2f}  P {c['P']:.3f} R {c['R']:.3f} F1 {f1:.3f}"
                  f"  same-2nd-level near-miss FP rate {c['hard_fpr']:.1%}")
            if best is None or f1 > best[0]:
                best = (f1, min_text, th)
    if best is None:
        print(f"no setting reaches precision {MIN_PRECISION}")
        return DEFAULT_MIN_TEXT, DEFAULT_THRESHOLD
    print(f"chosen: min_text {best[1]:.2f}, threshold {best[2]:.2f} (best F1 with precision ≥ {MIN_PRECISION}"
          f" and same-2nd-level near-miss FP rate ≤ {MAX_HARD_FPR:.0%})")
    return best[1], best[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2000, help="labelled pairs to generate")
    ap.add_argument("--seed", type=int, default=EVAL_SEED, help="evaluation seed")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--min-text", type=float, default=DEFAULT_MIN_TEXT)
    ap.add_argument("--tune", action="store_true", help=f"choose a threshold on seed {TUNING_SEED} instead")
    args = ap.parse_args(argv)
    if args.tune:
        tune(args.pairs)
        return 0
    report(generate_pairs(args.pairs, args.seed), args.seed, args.threshold, args.min_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
