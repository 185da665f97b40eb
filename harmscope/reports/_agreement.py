"""Judge-agreement report (``harmscope judges compare``): the HTML and PDF renderers and plots.

Written through the report-format registry (:data:`harmscope.reports.formats.REPORT_FORMATS`,
:func:`harmscope.reports.render.render_agreement`). Self-contained renderer over the dict of
:func:`harmscope.classifiers.judges.agreement.compare_judges`: tables (per judge, per source, per
category, pairwise) and two plots (ROC curves with each judge's operating point; reliability
diagram). Every text that comes from data (judge specs, sources, categories) is escaped in HTML
and in PDF paragraphs; matplotlib draws with math text off.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from harmscope.safeio import atomic_write_bytes

MAIN_COLS = ("judge", "kind", "n", "n_answered", "abstention_rate", "accuracy", "precision", "recall",
             "specificity", "f1", "kappa", "auc", "ece", "suggested_threshold")
PAIR_COLS = ("a", "b", "n", "agreement", "kappa", "b_only_a_right", "c_only_b_right", "mcnemar_p")


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return str(v)


def main_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per judge for the summary table."""
    out = []
    for j in report["judges"]:
        m = j["metrics"]
        cal = j.get("calibration") or {}
        out.append({"judge": j["judge"], "kind": j["kind"], **{k: m.get(k) for k in MAIN_COLS[2:12]},
                    "ece": cal.get("ece"), "suggested_threshold": cal.get("suggested_threshold")})
    return out


def _sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    secs = [("Agreement with the human label", list(MAIN_COLS),
             [[_fmt(r.get(c)) for c in MAIN_COLS] for r in main_rows(report)])]
    conf_cols = ["judge", "tp", "fp", "tn", "fn"]
    secs.append(("Confusion matrices (positive = violation)", conf_cols,
                 [[_fmt(j["judge"])] + [_fmt(j["confusion"].get(k)) for k in conf_cols[1:]] for j in report["judges"]]))
    if report["pairwise"]:
        secs.append(("Between judges: Cohen's kappa and exact McNemar", list(PAIR_COLS),
                     [[_fmt(p.get(c)) for c in PAIR_COLS] for p in report["pairwise"]]))
    for key, title in (("by_source", "By source"), ("by_category", "By category")):
        rows = []
        cols = ["judge", key[3:], "n", "n_answered", "accuracy", "precision", "recall", "kappa", "positive_rate"]
        for j in report["judges"]:
            for r in j.get(key) or []:
                rows.append([_fmt(j["judge"])] + [_fmt(r.get(c)) for c in cols[1:]])
        if rows:
            secs.append((title, cols, rows))
    for j in report["judges"]:
        cal = j.get("calibration")
        if cal and cal.get("bins"):
            cols = ["bin", "n", "mean_score", "positive_rate"]
            secs.append((f"Reliability of {j['judge']} (ECE {_fmt(cal['ece'])})", cols,
                         [[f"{b['lo']:.1f}-{b['hi']:.1f}", _fmt(b["n"]), _fmt(b["mean_score"]),
                           _fmt(b["positive_rate"])] for b in cal["bins"]]))
    return secs


# ---------------------------------------------------------------------- plots
def _lbl(text: str) -> str:
    """A plot label with matplotlib math text neutralised."""
    return str(text)[:48].replace("$", r"\$")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def roc_png(report: dict[str, Any]) -> bytes | None:
    """ROC curves of scoring judges and the operating point of every judge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    drawn = False
    for j in report["judges"]:
        label = _lbl(j["judge"])
        roc = (j.get("calibration") or {}).get("roc")
        if roc:
            ax.plot(roc["fpr"], roc["tpr"], label=f"{label} (AUC {_fmt(j['metrics'].get('auc'))})")
            drawn = True
        m = j["metrics"]
        spec, rec = m.get("specificity"), m.get("recall")
        if spec is not None and rec is not None:
            ax.scatter([1 - spec], [rec], marker="o", s=28, label=f"{label} verdicts")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("ROC and operating points")
    ax.legend(fontsize=6, loc="lower right")
    return _png(fig)


def reliability_png(report: dict[str, Any]) -> bytes | None:
    """Reliability diagram: mean score vs observed positive rate per bin, per scoring judge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cals = [(j["judge"], j["calibration"]) for j in report["judges"] if (j.get("calibration") or {}).get("bins")]
    if not cals:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    for name, cal in cals:
        xs = [b["mean_score"] for b in cal["bins"]]
        ys = [b["positive_rate"] for b in cal["bins"]]
        ax.plot(xs, ys, marker="o", label=f"{_lbl(name)} (ECE {_fmt(cal['ece'])})")
    ax.set_xlabel("mean judge score in bin")
    ax.set_ylabel("observed violation rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Reliability diagram")
    ax.legend(fontsize=6, loc="upper left")
    return _png(fig)


# ---------------------------------------------------------------------- HTML
def render_html(report: dict[str, Any], path: Path, plots: dict[str, bytes | None]) -> Path:
    import base64

    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
             "style-src 'unsafe-inline'\">",
             "<title>Judge agreement</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
             "color:#222}table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}th{background:#f3f3f3}.note{color:#555;font-size:13px}</style></head><body>",
             "<h1>Judge agreement with human labels</h1>",
             f"<p>Data: <code>{e(report['data'])}</code> &middot; {report['n']} labelled replies &middot; "
             f"positive rate {report['positive_rate']:.3f} &middot; positive = {e(report['positive'])}</p>"]
    for title, cols, rows in _sections(report):
        parts.append(f"<h2>{e(title)}</h2><table><tr>{''.join(f'<th>{e(c)}</th>' for c in cols)}</tr>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>")
        parts.append("</table>")
    for name, png in plots.items():
        if png:
            parts.append(f"<h2>{e(name)}</h2><img alt='{e(name)}' src='data:image/png;base64,"
                         f"{base64.b64encode(png).decode()}'>")
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{e(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append("</body></html>\n")
    return _atomic(path, "".join(parts).encode("utf-8"))


# ---------------------------------------------------------------------- PDF
def render_pdf(report: dict[str, Any], path: Path, plots: dict[str, bytes | None]) -> Path:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    st = getSampleStyleSheet()
    small = st["BodyText"].clone("small", fontSize=7, leading=8.5)
    e = html.escape  # Paragraph markup: escape &, <, >
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=1.2 * cm, rightMargin=1.2 * cm,
                            topMargin=1.2 * cm, bottomMargin=1.2 * cm, title="Judge agreement")
    flow: list[Any] = [Paragraph("Judge agreement with human labels", st["Title"]),
                       Paragraph(e(f"Data: {report['data']} - {report['n']} labelled replies - positive rate "
                                   f"{report['positive_rate']:.3f}"), st["BodyText"]), Spacer(1, 6)]
    for title, cols, rows in _sections(report):
        flow.append(Paragraph(e(title), st["Heading3"]))
        data = [[Paragraph(e(c), small) for c in cols]] + [[Paragraph(e(str(c)[:80]), small) for c in r]
                                                              for r in rows]
        t = Table(data, repeatRows=1)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        flow += [t, Spacer(1, 8)]
    for name, png in plots.items():
        if png:
            flow += [Paragraph(e(name), st["Heading3"]), Image(io.BytesIO(png), width=12 * cm, height=10 * cm)]
    for n in report["notes"]:
        flow.append(Paragraph(e(n), small))
    doc.build(flow)
    return _atomic(path, buf.getvalue())


def _atomic(path: Path, data: bytes) -> Path:
    return atomic_write_bytes(path, data)
