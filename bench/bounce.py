"""Bounce analysis throughput over the fixture corpus, on one core.

    python bench/bounce.py [--rounds 7] [--flufl DIR]

Analyses every message of tests/data/bounces (bounces in 15 formats and the
non-bounces) with `nmail.bounce.analysis.analyze`, round after round, and
prints messages per second (best round; target: 2,000/s). The peer, run in
the same invocation over the same bytes: the standard library's `email`
parser alone (the least any analyser built on it pays), and Mailman's
`flufl.bounce` (`scan_message`, addresses only) when it can be imported
(`--flufl DIR` adds DIR to the path, for an install outside the project,
e.g. `pip install --target DIR flufl.bounce`). Also prints flufl.bounce's
recipient hits on the corpus, the measure behind not using it. Never
asserts a time.
"""

from __future__ import annotations

import argparse
import email
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nmail.bounce.analysis import analyze  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "bounces"


def load() -> tuple[list[bytes], dict[str, dict[str, object]]]:
    expected = json.loads((CORPUS / "expected.json").read_text())
    messages = [(CORPUS / name).read_bytes() for name in sorted(expected)]
    messages += [p.read_bytes() for p in sorted((CORPUS / "handwritten").glob("*.eml"))]
    messages += [p.read_bytes() for p in sorted((CORPUS / "not_bounces").glob("*.eml"))]
    return messages, expected


def best_rate(work: Callable[[bytes], object], messages: list[bytes], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.process_time()
        repeat = 0
        while True:  # at least 0.2 s of CPU per round, for a stable figure
            for raw in messages:
                work(raw)
            repeat += 1
            spent = time.process_time() - start
            if spent >= 0.2:
                break
        best = max(best, repeat * len(messages) / spent)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--flufl", metavar="DIR", help="where flufl.bounce is installed")
    args = parser.parse_args()
    if args.flufl:
        sys.path.insert(0, args.flufl)
    messages, expected = load()
    size = sum(len(m) for m in messages) / len(messages)
    print(f"corpus: {len(messages)} messages, {size / 1024:.1f} KiB on average")
    ours = best_rate(analyze, messages, args.rounds)
    print(f"nmail analyze:           {ours:8.0f} msg/s  (target >= 2,000)")
    parse_only = best_rate(email.message_from_bytes, messages, args.rounds)
    print(f"email parse only (peer): {parse_only:8.0f} msg/s  nmail/peer {ours / parse_only:.2f}x")
    try:
        from flufl.bounce import scan_message  # type: ignore[import-not-found]
    except ImportError:
        print("flufl.bounce: not importable (see --flufl); skipped")
        return

    def flufl(raw: bytes) -> object:
        return scan_message(email.message_from_bytes(raw))

    theirs = best_rate(flufl, messages, args.rounds)
    print(f"flufl.bounce (peer):     {theirs:8.0f} msg/s  nmail/flufl {ours / theirs:.2f}x")
    hits = sum(
        1 for name, entry in expected.items()
        if {a.decode() if isinstance(a, bytes) else a
            for a in flufl((CORPUS / name).read_bytes())} == set(entry["recipients"])
    )
    ours_hits = sum(
        1 for name, entry in expected.items()
        if (found := analyze((CORPUS / name).read_bytes())) is not None
        and [r.address for r in found.recipients] == entry["recipients"]
    )
    print(f"failed recipients found: nmail {ours_hits}/{len(expected)}, "
          f"flufl.bounce {hits}/{len(expected)}")


if __name__ == "__main__":
    main()
