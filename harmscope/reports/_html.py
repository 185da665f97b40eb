"""Self-contained HTML rendering: inline CSS, inline images, sortable tables, no network.

Every piece of text goes through Jinja2 autoescaping. A Content-Security-Policy allows only
the one inline script we ship (by its hash) and data: images, so even a rendering bug could not
run a script injected through a model reply.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from jinja2 import Environment, select_autoescape

from harmscope.reports._document import Document, fmt

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute('data-dir') !== 'asc';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
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
""".strip()

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans','DejaVu Sans',sans-serif;margin:0;color:#1d232b;background:#fafbfc}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px}
header{background:#34495e;color:#fff;padding:28px 32px}header h1{margin:0 0 12px;font-size:26px}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0;font-size:13px}
header dt{opacity:.75}h2{border-bottom:2px solid #34495e;padding-bottom:4px;margin-top:36px}
h3{margin-top:24px;font-size:16px}table{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px;width:100%}
th,td{border:1px solid #d5d9de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#34495e;color:#fff;cursor:pointer;user-select:none;white-space:nowrap}
th[data-dir=asc]::after{content:' ▲'}th[data-dir=desc]::after{content:' ▼'}
tbody tr:nth-child(even){background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{font-weight:600;width:32%}figure{margin:12px 0}figure img{max-width:100%;border:1px solid #e1e4e8}
.warn{background:#fdecea;border-left:4px solid #b03a2e;padding:8px 12px}
.example{border:1px solid #d5d9de;background:#fff;margin:10px 0;padding:8px 12px}
.example pre{white-space:pre-wrap;word-break:break-word;background:#f4f4f4;padding:6px;margin:4px 0;font-size:12px}
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{{ script_hash }}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title><style>{{ css|safe }}</style></head>
<body><header><h1>{{ doc.title }}</h1><dl>
{% for k, v in doc.subtitle %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}
</dl></header><main>
{% for b in doc.blocks %}
{% if b.kind == 'heading' %}{% if b.level == 1 %}<h2>{{ b.text }}</h2>{% else %}<h3>{{ b.text }}</h3>{% endif %}
{% elif b.kind == 'para' %}<p>{{ b.text }}</p>
{% elif b.kind == 'warning' %}<p class="warn">{{ b.text }}</p>
{% elif b.kind == 'kv' %}<table class="kv"><tbody>{% for k, v in b.items %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</tbody></table>
{% elif b.kind == 'table' %}<table class="sortable"><thead><tr>{% for k, label in b.columns %}<th>{{ label }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in b.items %}<tr>{% for k, label in b.columns %}{% set v = r.get(k) %}<td{% if v is number %} class="num" data-v="{{ v }}"{% endif %}>{{ fmt(v, k) }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% elif b.kind == 'image' and b.png %}<figure><img alt="{{ b.text }}" src="data:image/png;base64,{{ b64(b.png) }}"><figcaption>{{ b.text }}</figcaption></figure>
{% elif b.kind == 'examples' %}{% for ex in b.items %}<div class="example"><strong>{{ ex.get('rule_id', '') }}</strong> · probe {{ ex.get('probe_id', '') }} · {{ ex.get('judge', '') }} {{ fmt(ex.get('score')) }}
<pre>Prompt: {{ trunc(ex.get('prompt', '')) }}</pre><pre>Reply: {{ trunc(ex.get('reply', '')) }}</pre></div>{% endfor %}
{% endif %}
{% endfor %}
</main><script>{{ script|safe }}</script></body></html>
"""


def _trunc(text: object, limit: int = 1200) -> str:
    s = str(text or "")
    return s if len(s) <= limit else s[:limit] + " […]"


def render_html(doc: Document, path: Path) -> Path:
    """Write ``doc`` as one self-contained HTML file."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode()
    html = env.from_string(TEMPLATE).render(
        doc=doc, css=CSS, script=SORT_JS, script_hash=script_hash, fmt=fmt, trunc=_trunc,
        b64=lambda b: base64.b64encode(b).decode("ascii"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
