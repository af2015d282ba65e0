"""The HTML page: ``templates/page.html``, rendered by Jinja2 with autoescaping
on, so every value is escaped (a backend named ``<script>`` is text).

Jinja2 compiles the template to Python once; twisted.web.template took about
1.5 s for 2,000 backend rows. What repeats for each frontend is written in Python
(``frontend_sections``, its pools' ``backend_rows``, ``counter_rows``; every text
escaped as the template would): through Jinja2 the rows alone were three quarters of
a render.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jinja2
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from .. import __version__
from ..ages import format_age
from .view import LastUse


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


_HEART = {True: "❤️", False: "·"}


_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#39;", '"': "&#34;"})


def _esc(value: Any) -> str:
    """markupsafe's ``escape`` to the byte for a plain value, without making a Markup of each
    (2,000 rows of ten cells: most texts have nothing to escape)."""
    text = str(value)
    if "&" in text or "<" in text or ">" in text or "'" in text or '"' in text:
        return text.translate(_ENTITIES)
    return text


_PICK = '<td><input type="checkbox" class="pick" aria-label="select {}"></td>'
_MENU = '<td class="actions"><button type="button" data-op="menu" title="actions">⋮</button></td>'

# A row but for what the admin view adds and what moves with the clock (the age and the
# downtime): the <tr>, the escaped name (for the admin's checkbox), the cells up to the age,
# those between it and the downtime, those after it.
RowParts = tuple[str, str, str, str, str]


def _row_parts(b: dict[str, Any]) -> RowParts:
    name = _esc(b["name"])
    note = f" ({_esc(b['note'])})" if b["note"] else ""
    state = _esc(b["state"])
    head = (
        f'<td class="be-name">{name}</td><td class="be-addr">{_esc(b["address"])}</td>'
        f'<td data-f="state" class="state-{state}">{state}{note}</td>'
        f'<td data-f="weight">{_esc(b["weight"])}</td>'
        f'<td data-f="effective_weight">{_esc(b["effective_weight"])}</td>'
        f'<td data-f="buckets">{_esc(num(b["buckets"]))}</td>'
        f'<td class="age" data-f="since" data-since="{b["since"]:.3f}">'
    )
    mid = (
        f'</td><td data-f="probe" class="probe">{_esc(probe_text(b))}</td>'
        f'<td data-f="checks">{checks_text(b)}</td><td data-f="downs">{_esc(b["downs"])}</td>'
        '<td data-f="downtime">'
    )
    tail = f'</td><td data-f="heartbeat" class="heartbeat">{_HEART[bool(b["in_flight"])]}</td>'
    return f'      <tr data-key="{_esc(b["key"])}" data-backend="{name}">', name, head, mid, tail


class RowMemo(LastUse[int, tuple[dict[str, Any], RowParts]]):
    """Each backend row's parts, kept from one render to the next by the backend's view.

    A ViewMemo hands over the same dict while a backend's messages are unchanged, so a page
    of 2,000 rows re-renders only the rows whose backend changed, and in every row the age
    and the downtime (which the ViewMemo sets afresh in the dict). Keyed by the dict's
    identity with the dict held, so no identity is reused while its entry lives; each render
    keeps only the rows it wrote (``rotate``, by ``render_page``).
    """

    def parts(self, b: dict[str, Any]) -> RowParts:
        entry = self.get(id(b))  # the dict is held with its parts: no other has its id
        if entry is None:
            entry = (b, _row_parts(b))
        self.use(id(b), entry)
        return entry[1]


def backend_rows(backends: list[dict[str, Any]], admin: bool, at: float, memo: RowMemo | None = None) -> Markup:
    """A pool's ``<tr>`` rows, as the template's cells would be (the script finds cells by
    ``data-f``); every text from a backend or its probes is escaped."""
    return Markup(_rows(backends, admin, at, memo))


def _rows(backends: list[dict[str, Any]], admin: bool, at: float, memo: RowMemo | None) -> str:
    menu = _MENU + "</tr>" if admin else "</tr>"
    out = []
    for b in backends:
        tr, name, head, mid, tail = memo.parts(b) if memo is not None else _row_parts(b)
        since = b["since"]
        age = format_age(at - since) if since else "–"
        out.append(f"{tr}{_PICK.format(name) if admin else ''}{head}{age}{mid}{duration(b['downtime'])}{tail}{menu}")
    return "".join(out)


_TABLE_HEAD = (
    '<th>backend</th><th>address</th><th>state</th><th title="configured weight">weight</th>'
    '<th title="weight given to VPP">effective</th><th title="VPP new-flow buckets">buckets</th>'
    '<th title="time in the current state">in state</th><th>last check</th>'
    '<th title="checks answered, of them failed">checks</th><th title="up to down transitions">downs</th>'
    '<th title="time spent down">downtime</th><th title="probe in flight">♥</th>'
)
_ACTIVE = ' <span class="active">active</span>'


def _json_attr(value: Any) -> str:
    """``value|tojson|forceescape``: the JSON as Jinja2 writes it for a script, escaped again
    for an attribute."""
    return _esc(htmlsafe_json_dumps(value, sort_keys=True))


def _summary(fe: dict[str, Any]) -> str:
    """The frontend's ``<summary>`` line, and the differences when its routers' tables differ."""
    c = fe["consistency"]
    agreement = ""
    differences = ""
    if c:
        digests = ", ".join(f"{k}: {v}" for k, v in sorted(c["digests"].items(), key=lambda kv: kv[0].lower()))
        agree = c["consistent"]
        agreement = (
            f' <span class="consistency {"agree" if agree else "differ"}" data-f="consistency" '
            f'title="{_esc(digests)}">{"tables agree" if agree else "tables DIFFER"}</span>'
        )
        if not agree:
            items = "".join(f"<li>{_esc(x)}</li>" for x in c["differences"])
            differences = f'\n  <ul class="differences" data-f="differences">{items}</ul>'
    return (
        f'  <summary><span class="fe-name">{_esc(fe["name"])}</span> '
        f'<span class="fe-addr">{_esc(fe["address"])} {_esc(fe["protocol"])}/{_esc(fe["port"])}</span> '
        f'<span data-f="fe-state" class="badge state-{_esc(fe["state"])}">{_esc(fe["state"])}</span> '
        f'<span class="health" data-f="fe-health" title="{_esc(fe["health_label"])}">{_esc(fe["health_icon"])}</span> '
        f'<span class="fe-desc">{_esc(fe["description"])}</span>{agreement}</summary>{differences}'
    )


def frontend_sections(
    frontends: list[dict[str, Any]], admin: bool, closed: set[str], at: float, memo: RowMemo | None = None
) -> Markup:
    """Each frontend's ``<details>``: its summary, its VIP table's data, a table per pool
    (``backend_rows``) and what drains; every text escaped as the template would."""
    pick = "<th></th>" if admin else ""
    out = []
    for fe in frontends:
        name = _esc(fe["name"])
        out.append(
            f'\n<details class="frontend" data-fe="{name}"{"" if fe["name"] in closed else " open"}>\n'
            f'{_summary(fe)}\n  <div class="vip-table" data-f="table" data-table="{_json_attr(fe["table"])}"></div>'
        )
        for pool in fe["pools"]:
            active = _ACTIVE if pool["active"] else ""
            out.append(
                f'\n  <table class="pool">\n    <caption>{_esc(pool["name"])}{active}</caption>'
                f"\n    <thead><tr>{pick}{_TABLE_HEAD}{pick}</tr></thead>\n    <tbody>"
                f"{_rows(pool['backends'], admin, at, memo)}</tbody>\n  </table>"
            )
        if fe["draining"]:
            out.append('\n  <ul class="draining">')
            for d in fe["draining"]:
                of = f" ({_esc(d['backend'])})" if d["backend"] else ""
                out.append(
                    f'\n    <li><span class="state-draining">draining</span> {_esc(d["address"])}{of}: '
                    f"{_esc(d['why'])}, weight 0, {_esc(d['seconds_left'])} s left</li>"
                )
            out.append("\n  </ul>")
        out.append("\n</details>")
    return Markup("".join(out))


COUNTERS = ("next", "first", "untracked", "no_server", "route_packets", "route_bytes")


def counter_rows(frontends: list[dict[str, Any]]) -> Markup:
    """The VPP section's table: a row of each frontend's counters and their rates."""
    out = []
    for fe in frontends:
        c = fe["counters"] or NO_COUNTERS
        name = _esc(fe["name"])
        cells = "".join(
            f'<td><span data-f="{k}">{_esc(num(c[k]))}</span> '
            f'<small class="rate" data-f="{k}_rate">{_esc(rate(c, k))}</small></td>'
            for k in COUNTERS
        )
        out.append(f'\n      <tr data-counter="{name}"><td>{name}</td>{cells}</tr>')
    return Markup("".join(out))


def render_page(
    daemons: list[dict[str, Any]],
    selected: dict[str, Any],
    admin: bool,
    csrf: str,
    closed: set[str],
    now: float | None = None,
    memo: RowMemo | None = None,
) -> str:
    """The page for ``selected`` (a daemon_view), with a tab per entry of ``daemons``;
    ``memo``: the rows of this daemon's last render (kept for the next one)."""
    at = time.time() if now is None else now

    def age(since: float | None) -> str:
        return format_age(at - since) if since else "–"

    def sections() -> Markup:
        return frontend_sections(selected["frontends"], admin, closed, at, memo)

    def counters() -> Markup:
        return counter_rows(selected["frontends"])

    page = (
        environment()
        .get_template("page.html")
        .render(
            daemons=daemons,
            d=selected,
            admin=admin,
            csrf=csrf,
            closed=closed,
            age=age,
            sections=sections,
            counters=counters,
        )
    )
    if memo is not None:
        memo.rotate()
    return page


def web_version() -> dict[str, str]:
    from ..version import commit

    return {"version": __version__, "commit": commit()}
