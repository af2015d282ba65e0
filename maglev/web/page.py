"""The HTML page: ``templates/page.html``, rendered by Jinja2 with autoescaping
on, so every value is escaped (a backend named ``<script>`` is text).

Jinja2 compiles the template to Python once; twisted.web.template took about
1.5 s for 2,000 backend rows, this takes a few tens of milliseconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..ages import format_age


def templates_dir() -> Path:
    """``templates/`` is installed as ``maglev/templates``; a checkout has it at the top."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if (installed / "page.html").exists() else package.parent / "templates"


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
        )
    return _ENV


NO_COUNTERS = {
    "next": None, "first": None, "untracked": None, "no_server": None, "route_packets": None, "route_bytes": None,
}  # fmt: skip


def num(v: Any) -> str:
    return "–" if v is None else str(v)


# The page's script writes the same texts as these (maglev.js: probeText, checksText,
# duration, rate): a value the script sets to what is already there does not flash.


def probe_text(b: dict[str, Any]) -> str:
    """The last check inline: code, detail, duration."""
    lp = b.get("last_probe")
    if not lp:
        return "–"
    code = lp["code"] or ("ok" if lp["ok"] else "fail")
    detail = f" {lp['detail']}" if lp["detail"] else ""
    return f"{code}{detail} · {lp['duration'] * 1000:.1f} ms"


def checks_text(b: dict[str, Any]) -> str:
    return f"{b['checks']} ({b['failed_checks']} failed)" if b["failed_checks"] else str(b["checks"])


def duration(seconds: float) -> str:
    return "0s" if seconds < 1 else format_age(seconds)


def rate(counters: dict[str, Any], kind: str) -> str:
    rates = counters.get("rates")
    return f"{rates[kind]:.1f}/s" if rates and rates[kind] is not None else ""


def render_page(
    daemons: list[dict[str, Any]],
    selected: dict[str, Any],
    admin: bool,
    csrf: str,
    closed: set[str],
    now: float | None = None,
) -> str:
    """The page for ``selected`` (a daemon_view), with a tab per entry of ``daemons``."""
    at = time.time() if now is None else now

    def age(since: float | None) -> str:
        return format_age(at - since) if since else "–"

    return (
        environment()
        .get_template("page.html")
        .render(
            daemons=daemons,
            d=selected,
            admin=admin,
            csrf=csrf,
            closed=closed,
            age=age,
            num=num,
            probe_text=probe_text,
            checks_text=checks_text,
            duration=duration,
            rate=rate,
            NO_COUNTERS=NO_COUNTERS,
        )
    )


def web_version() -> dict[str, str]:
    from ..version import commit

    return {"version": __version__, "commit": commit()}
