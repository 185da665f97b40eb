"""Self-contained HTML rendering: inline CSS, inline SVG/PNG figures, no network.

Layout: a sticky section index on the left; every section is a ``<details>`` element (appendices
start closed); tables sort by clicking a header and, where the document says so, filter by area,
rule group or significance.

Every piece of text goes through Jinja2 autoescaping (and ``neutralise`` for control characters
and bidi overrides); inline SVG charts escape their labels themselves. A Content-Security-Policy
allows only the one inline script we ship (by its hash; event handlers are attached from it, never
inline) and data: images, so even a rendering bug could not run a script injected through a model
reply.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from pathlib import Path

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from harmscope.reports import _charts
from harmscope.reports import _palette as pal
from harmscope.reports._document import Block, Document, fmt

SCRIPT = """
(function () {
  function each(sel, fn, root) { Array.prototype.forEach.call((root || document).querySelectorAll(sel), fn); }
  each('table.sortable th', function (th) {
    th.addEventListener('click', function () {
      var table = th.closest('table'), body = table.tBodies[0];
      var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
      var asc = th.getAttribute('data-dir') !== 'asc';
      each('th', function (h) { h.removeAttribute('data-dir'); }, table);
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      function key(r) {
        var c = r.cells[idx], v = c.getAttribute('data-v');
        if (v === null) { v = c.textContent; }
        var n = parseFloat(v);
        return isNaN(n) ? v.toLowerCase() : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  each('.filters', function (bar) {
    var table = document.getElementById(bar.getAttribute('data-table'));
    var selects = bar.querySelectorAll('select'), count = bar.querySelector('.count');
    function apply() {
      var shown = 0, rows = table.tBodies[0].rows;
      Array.prototype.forEach.call(rows, function (r) {
        var ok = true;
        Array.prototype.forEach.call(selects, function (s) {
          var have = (r.getAttribute('data-f-' + s.getAttribute('data-col')) || '').split('|');
          if (s.value !== '' && have.indexOf(s.value) < 0) { ok = false; }
        });
        r.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown + ' of ' + rows.length + ' rows';
    }
    Array.prototype.forEach.call(selects, function (s) { s.addEventListener('change', apply); });
    apply();
  });
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1)), el = id && document.getElementById(id);
    while (el) { if (el.tagName === 'DETAILS') { el.open = true; } el = el.parentElement; }
  }
  window.addEventListener('hashchange', openTarget);
  openTarget();
  each('button[data-all]', function (btn) {
    btn.addEventListener('click', function () {
      var open = btn.getAttribute('data-all') === 'open';
      each('details.section', function (d) { d.open = open; });
    });
  });
})();
""".strip()
SORT_JS = SCRIPT  # the name earlier versions exported

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans','DejaVu Sans',sans-serif;margin:0;color:#1d232b;background:#fafbfc;line-height:1.45}
header{background:#2b3640;color:#fff;padding:20px 32px}header h1{margin:0 0 6px;font-size:24px}
header .meta{font-size:12.5px;opacity:.85}header .meta span{margin-right:18px}
.layout{display:grid;grid-template-columns:210px minmax(0,1fr);gap:28px;max-width:1320px;margin:0 auto;padding:0 24px}
nav.index{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding:18px 0;font-size:13px}
nav.index a{display:block;color:#2b3640;text-decoration:none;padding:3px 8px;border-left:3px solid transparent}
nav.index a:hover{border-left-color:#0072B2;background:#eef2f6}
nav.index button{font:inherit;font-size:12px;margin:8px 4px 0 0;padding:2px 8px;border:1px solid #c8ccd2;background:#fff;border-radius:3px;cursor:pointer}
main{padding:8px 0 64px;min-width:0}
details.section{margin:18px 0;background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:4px 18px 12px}
details.section>summary{cursor:pointer;list-style:none;padding:8px 0}
details.section>summary::-webkit-details-marker{display:none}
details.section>summary h2{display:inline;font-size:20px;margin:0}
details.section>summary::before{content:'▸ ';color:#6b7580}details.section[open]>summary::before{content:'▾ '}
h3{margin:22px 0 6px;font-size:15.5px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 14px;width:100%}
th,td{border:1px solid #d5d9de;padding:3px 6px;text-align:left;vertical-align:top}
table.sortable th{background:#2b3640;color:#fff;cursor:pointer;user-select:none;white-space:nowrap}
th[data-dir=asc]::after{content:' ▲'}th[data-dir=desc]::after{content:' ▼'}
tbody tr:nth-child(even){background:#f5f7f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{font-weight:600;width:24%;background:#f5f7f9}
figure{margin:10px 0}figcaption{font-size:12px;color:#6b7580}
svg.chart{width:100%;max-width:860px;height:auto;font-family:inherit}
figure img{max-width:min(100%,720px)}
figure.row{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}figure.row figcaption{grid-column:1/-1}
.warn{background:#fdecea;border-left:4px solid #b03a2e;padding:8px 12px}
.example{border:1px solid #d5d9de;background:#fafbfc;margin:8px 0;padding:6px 12px;font-size:12.5px}
.example pre{white-space:pre-wrap;word-break:break-word;background:#f0f2f4;padding:6px;margin:4px 0;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 14px}
.card{flex:1 1 220px;border:1px solid #d5d9de;border-radius:6px;padding:8px 12px;background:#fff}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.04em;opacity:.8}.card .v{font-size:19px;font-weight:700}
ul.sentences{padding-left:20px}ul.sentences li{margin:4px 0}
.filters{font-size:12.5px;margin:4px 0;display:flex;gap:14px;flex-wrap:wrap;align-items:center}
.filters select{font:inherit;font-size:12.5px}.filters .count{color:#6b7580}
details.table>summary{cursor:pointer;color:#0072B2;font-size:13px}
.exec-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:18px;align-items:start}
@media (max-width:900px){.layout{grid-template-columns:1fr}nav.index{position:static;max-height:none}.exec-grid{grid-template-columns:1fr}}
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{{ script_hash }}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title><style>{{ css|safe }}</style></head>
<body><header><h1>{{ doc.title }}</h1><div class="meta">
{% for k, v in doc.subtitle %}<span><b>{{ k }}</b>: {{ v }}</span>{% endfor %}
</div></header>
<div class="layout"><nav class="index" aria-label="sections"><strong>Sections</strong>
{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}
<button type="button" data-all="open">expand all</button><button type="button" data-all="close">collapse all</button>
</nav><main>
{% for s in sections %}<details class="section" id="{{ s.anchor }}"{% if not s.collapsed %} open{% endif %}><summary><h2>{{ s.title }}</h2></summary>
{% for b in s.blocks %}{{ block(b, loop.index) }}{% endfor %}
</details>
{% endfor %}
</main></div><script>{{ script|safe }}</script></body></html>
"""

BLOCK = """{% set b = blk %}
{% if b.kind == 'heading' %}<h3{% if b.anchor %} id="{{ b.anchor }}"{% endif %}>{{ b.text }}</h3>
{% elif b.kind == 'para' %}<p>{{ b.text }}</p>
{% elif b.kind == 'warning' %}<p class="warn">{{ b.text }}</p>
{% elif b.kind == 'headline' %}<div class="cards">{% for k, v, color in b.items %}<div class="card"{% if color %} style="background:{{ color }};color:{{ text_on(color) }}"{% endif %}><div class="k">{{ k }}</div><div class="v">{{ v }}</div></div>{% endfor %}</div>
{% elif b.kind == 'sentences' %}<ul class="sentences">{% for s in b.items %}<li>{{ s }}</li>{% endfor %}</ul>
{% elif b.kind == 'kv' %}<table class="kv"><tbody>{% for k, v in b.items %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</tbody></table>
{% elif b.kind == 'table' %}{% set tid = 't' ~ uid %}
{% if b.filters %}<div class="filters" data-table="{{ tid }}">{% for f in b.filters %}<label>{{ f|replace('_', ' ') }} <select data-col="{{ f }}"><option value="">all</option>{% for v in options(b, f) %}<option value="{{ v }}">{{ v }}</option>{% endfor %}</select></label>{% endfor %}<span class="count"></span></div>{% endif %}
{% if collapsed_table(b) %}<details class="table"><summary>show the table ({{ b.items|length }} rows)</summary>{% endif %}
<table class="sortable" id="{{ tid }}"><thead><tr>{% for k, label in b.columns %}<th>{{ label }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in b.items %}<tr{% for f in b.filters %} data-f-{{ f }}="{{ fvals(r.get(f), f)|join('|') }}"{% endfor %}>{% for k, label in b.columns %}{% set v = r.get(k) %}<td{% if v is number and v is not boolean %} class="num" data-v="{{ v }}"{% endif %}>{{ fmt(v, k) }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% if collapsed_table(b) %}</details>{% endif %}
{% elif b.kind == 'chart' and b.chart %}<figure>{{ svg(b.chart) }}{% if b.chart.note %}<figcaption>{{ b.chart.note }}</figcaption>{% endif %}</figure>
{% elif b.kind == 'charts' and b.items %}<figure class="row">{% for c in b.items %}{{ svg(c) }}{% endfor %}{% if b.text %}<figcaption>{{ b.text }}</figcaption>{% endif %}</figure>
{% elif b.kind == 'image' and b.png %}<figure><img alt="{{ b.text }}" src="data:image/png;base64,{{ b64(b.png) }}"><figcaption>{{ b.text }}</figcaption></figure>
{% elif b.kind == 'examples' %}{% for ex in b.items %}<div class="example"><strong>{{ ex.get('rule_id', '') }}</strong> · probe {{ ex.get('probe_id', '') }} · transform {{ ex.get('transform', '—') }} · scores: {{ scores(ex) }}
<pre>Prompt: {{ trunc(ex.get('prompt', '')) }}</pre><pre>Reply: {{ trunc(ex.get('reply', '')) }}</pre></div>{% endfor %}
{% endif %}"""


def _trunc(text: object, limit: int = 1200) -> str:
    s = str(text or "")
    return s if len(s) <= limit else s[:limit] + " […]"


_INVISIBLE = {**{c: None for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}, 0x7F: None,
              **{c: None for c in range(0x80, 0xA0)},
              **{c: None for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF)},
              **{c: None for c in range(0x202A, 0x202F)}, **{c: None for c in range(0x2066, 0x206A)}}


def neutralise(value: object) -> object:
    """Text with control characters (C0 but tab/newline, DEL, C1) and bidi overrides/isolates
    shown as visible ``[U+XXXX]`` marks, so model output cannot hide or reorder report text."""
    if not isinstance(value, str) or hasattr(value, "__html__"):
        return value  # numbers as they are; our own |safe CSS/JS untouched
    if not any(ord(c) in _INVISIBLE for c in value):
        return value
    return "".join(f"[U+{ord(c):04X}]" if ord(c) in _INVISIBLE else c for c in value)


def _fvals(value: object, col: str) -> list[str]:
    """The values a table row offers to a filter (an 'I, III' area cell matches both I and III)."""
    return [str(neutralise(v.strip())) for v in fmt(value, col).split(",") if v.strip()] or ["—"]


def _options(blk: Block, col: str) -> list[str]:
    return sorted({v for r in blk.items for v in _fvals(r.get(col), col)})


def _scores(ex: dict) -> str:
    s = ex.get("judge_scores")
    if isinstance(s, dict) and s:
        return ", ".join(f"{k} {fmt(v)}" for k, v in s.items())
    return f"{ex.get('judges') or ex.get('judge') or 'judges'}: {fmt(ex.get('score'))}"


def _sections(doc: Document) -> list[dict]:
    sections: list[dict] = []
    for blk in doc.blocks:
        if blk.kind == "heading" and blk.level == 1:
            anchor = blk.anchor or f"s{len(sections) + 1}"
            sections.append({"title": blk.text, "anchor": anchor, "collapsed": blk.collapsed, "blocks": []})
        elif blk.kind == "pagebreak":
            continue
        else:
            if not sections:
                sections.append({"title": "Summary", "anchor": "summary", "collapsed": False, "blocks": []})
            sections[-1]["blocks"].append(blk)
    for s in sections:  # a plot followed by the generated sentences: side by side
        merged: list[Block] = []
        for blk in s["blocks"]:
            if blk.kind == "sentences" and merged and merged[-1].kind == "image":
                merged[-1] = Block("pair", items=[merged[-1], blk])
            else:
                merged.append(blk)
        s["blocks"] = merged
    seen: set[str] = set()
    for s in sections:  # anchors must be unique
        a, i = s["anchor"], 1
        while s["anchor"] in seen:
            i += 1
            s["anchor"] = f"{a}-{i}"
        seen.add(s["anchor"])
    return sections


def render_html(doc: Document, path: Path) -> Path:
    """Write ``doc`` as one self-contained HTML file."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), finalize=neutralise)
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    block_t = env.from_string(BLOCK)
    helpers = {
        "fmt": fmt, "trunc": _trunc, "b64": lambda b: base64.b64encode(b).decode("ascii"), "text_on": pal.text_on,
        "svg": lambda c: Markup(_charts.svg(c, clean=lambda s: str(neutralise(s)))),
        "options": _options, "fvals": _fvals, "scores": _scores,
        "collapsed_table": lambda b: len(b.items) > 40 or b.text.startswith("Per-rule differences"),
    }

    counter = itertools.count(1)

    def block(blk: Block, _index: int = 0) -> Markup:
        if blk.kind == "pair":
            return Markup('<div class="exec-grid">') + block(blk.items[0]) + block(blk.items[1]) + Markup("</div>")
        return Markup(block_t.render(blk=blk, uid=next(counter), **helpers))

    html = env.from_string(TEMPLATE).render(
        doc=doc, sections=_sections(doc), css=CSS, script=SCRIPT, script_hash=script_hash, block=block)
    from harmscope.safeio import atomic_write_text

    atomic_write_text(path, html)
    return path
