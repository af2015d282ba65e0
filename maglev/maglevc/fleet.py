"""maglevc given several servers (``--server lb1:9090,lb2:9090``): one command on each.

Routers that share VIPs are operated together. A change (``set backend ...``, ``set frontend
... weight ...``) is previewed on every router first (buckets moved per router; a router that
refuses the preview stops it before anything is changed), then applied router by router in
the order given; the first failure stops there and says which routers already made the
change (they are not rolled back). Any other command runs on each router in turn.
"""

from __future__ import annotations

from .cli import Shell
from .tree import ParseError, parse

PREVIEWED = ("backend_", "set_weight")


def run_on_each(shells: list[Shell], line: str) -> bool:
    """Run ``line`` on every router; False when it failed somewhere."""
    out = shells[0].out
    try:
        action = parse(line.split()).action
    except ParseError as e:
        out.error(str(e))
        return False
    if not action.startswith(PREVIEWED):
        ok = True
        for s in shells:
            out.line(f"== {s.server}")
            ok = s.run(line) and ok
        return ok
    words = line.split()
    preview = " ".join(["preview", *words[1:]])  # `set X ...` previewed as `preview X ...`
    if " for " in f" {preview} ":
        preview = preview[: f" {preview} ".index(" for ") - 1].rstrip()
    for s in shells:
        out.line(f"== {s.server}: preview")
        if not s.run(preview):
            out.error(f"preview refused on {s.server}: nothing was changed anywhere")
            return False
    done: list[str] = []
    for i, s in enumerate(shells):
        out.line(f"== {s.server}")
        if not s.run(line):
            kept = f"applied on {', '.join(done)} (not rolled back)" if done else "applied nowhere"
            rest = [x.server for x in shells[i + 1 :]]
            left = f"; not attempted on {', '.join(rest)}" if rest else ""
            out.error(f"stopped: failed on {s.server}; {kept}{left}")
            return False
        done.append(s.server)
    return True


__all__ = ["run_on_each"]
