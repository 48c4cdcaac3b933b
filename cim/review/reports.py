"""Reports of a review: HTML (Jinja2, Chinese with an English switch, self-contained), PDF (WeasyPrint, with
the CJK font WenQuanYi Zen Hei that ``make setup`` installs) and BCF 2.1 (one topic per finding, the elements'
GlobalIds as components and a viewpoint looking at them)."""

from __future__ import annotations

import datetime as dt
import io
import math
import uuid
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jinja2
import numpy as np
from markupsafe import Markup

from cim.review.findings import Finding, ReviewReport
from cim.review.registry import registered

TEMPLATES = Path(__file__).with_name("templates")
MAX_ROWS = 200
LIMIT_NAMES = {
    "max_height": ("限高 (m)", "height limit (m)"),
    "max_far": ("容积率上限", "max FAR"),
    "max_density": ("建筑密度上限", "max density"),
    "min_green_ratio": ("绿地率下限", "min green ratio"),
    "setback_m": ("退线 (m)", "setback (m)"),
}
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(["html", "j2"])
)


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"


def render_html(report: ReviewReport, *, lang: str = "zh", static: bool = False) -> str:
    """The report as one HTML page; ``static`` renders one language only (for the PDF), else both with a switch."""
    data = report.to_dict()
    titles = {name: (c.title_zh, c.title_en) for name, c in registered().items()}

    def t(zh: str, en: str) -> Markup:
        if static:
            return Markup(escape(zh if lang == "zh" else en))
        return Markup(f'<span class="zh">{escape(zh)}</span><span class="en">{escape(en)}</span>')

    def verdict_label(v: str) -> Markup:
        return t({"pass": "通过", "fail": "不通过", "skipped": "未检查"}[v], v.upper())

    def severity_label(s: str) -> Markup:
        return t({"error": "错误", "warning": "警告", "info": "信息"}[s], s)

    template = _ENV.get_template("report.html.j2")
    return template.render(
        report=data,
        lang=lang,
        static=static,
        t=t,
        titles=titles,
        verdict_label=verdict_label,
        severity_label=severity_label,
        fmt=_fmt,
        max_rows=MAX_ROWS,
        limit_names=LIMIT_NAMES,
        lang_index=0 if lang == "zh" else 1,
    )


def render_pdf(report: ReviewReport, *, lang: str = "zh") -> bytes:
    """The report as PDF bytes (WeasyPrint; CJK text in WenQuanYi Zen Hei)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=render_html(report, lang=lang, static=True)).write_pdf()
    return pdf


# --------------------------------------------------------------------------------------------- BCF 2.1
_XML = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _camera(points: np.ndarray[Any, Any]) -> dict[str, tuple[float, ...]]:
    """A perspective camera (model coordinates, metres) looking down at ``points`` from the south-east."""
    centre = points.mean(axis=0) if len(points) else np.zeros(3)
    radius = float(np.linalg.norm(points - centre, axis=1).max()) if len(points) else 10.0
    distance = max(radius, 5.0) / math.tan(math.radians(30.0)) * 1.2
    direction = np.array([-1.0, 1.0, -1.0]) / math.sqrt(3.0)
    position = centre - direction * distance
    right = np.cross(direction, [0.0, 0.0, 1.0])
    up = np.cross(right, direction)
    up /= np.linalg.norm(up)
    return {
        "CameraViewPoint": tuple(float(v) for v in position),
        "CameraDirection": tuple(float(v) for v in direction),
        "CameraUpVector": tuple(float(v) for v in up),
    }


def _point(name: str, xyz: tuple[float, ...]) -> str:
    return f"<{name}><X>{xyz[0]:.4f}</X><Y>{xyz[1]:.4f}</Y><Z>{xyz[2]:.4f}</Z></{name}>"


def _viewpoint(guid: str, finding: Finding, centres: dict[str, list[float]]) -> str:
    known = [centres[g] for g in finding.global_ids if g in centres]
    points = np.array(known if known else list(centres.values()) or [[0.0, 0.0, 0.0]], dtype=float)
    camera = _camera(points)
    components = "".join(f'<Component IfcGuid="{escape(g)}"/>' for g in finding.global_ids)
    return (
        f'{_XML}<VisualizationInfo Guid="{guid}"><Components>'
        + (f"<Selection>{components}</Selection>" if components else "")
        + '<Visibility DefaultVisibility="true"/></Components><PerspectiveCamera>'
        + "".join(_point(k, v) for k, v in camera.items())
        + "<FieldOfView>60</FieldOfView></PerspectiveCamera></VisualizationInfo>"
    )


def _markup(report: ReviewReport, check: str, finding: Finding, topic: str, viewpoint: str, when: str) -> str:
    project = escape(str(report.model.get("project_global_id") or ""))
    title = escape(f"[{check}] {finding.message_zh}"[:250])
    description = escape(f"{finding.message_zh}\n{finding.message_en}\nrule: {finding.rule}")
    kind = {"error": "Error", "warning": "Warning", "info": "Info"}[finding.severity]
    priority = {"error": "High", "warning": "Normal", "info": "Low"}[finding.severity]
    return (
        f'{_XML}<Markup><Header><File IfcProject="{project}" isExternal="true">'
        f"<Filename>{escape(report.file_name)}</Filename><Date>{when}</Date></File></Header>"
        f'<Topic Guid="{topic}" TopicType="{kind}" TopicStatus="Open"><Title>{title}</Title>'
        f"<Priority>{priority}</Priority><Labels>{escape(check)}</Labels><Labels>{escape(finding.rule)}</Labels>"
        f"<CreationDate>{when}</CreationDate><CreationAuthor>cim review</CreationAuthor>"
        f"<Description>{description}</Description></Topic>"
        f'<Viewpoints Guid="{viewpoint}"><Viewpoint>viewpoint.bcfv</Viewpoint></Viewpoints></Markup>'
    )


def render_bcf(report: ReviewReport, *, include_info: bool = False) -> bytes:
    """BCF 2.1 (.bcfzip) bytes: one topic per error/warning finding (also info with ``include_info``)."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    centres: dict[str, list[float]] = dict(report.model.get("element_centres_local") or {})
    buffer = io.BytesIO()
    namespace = uuid.UUID(int=int(report.sha256[:32], 16)) if report.sha256 else uuid.NAMESPACE_OID
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "bcf.version", f'{_XML}<Version VersionId="2.1"><DetailedVersion>2.1</DetailedVersion></Version>'
        )
        archive.writestr(
            "project.bcfp",
            f'{_XML}<ProjectExtension><Project ProjectId="{uuid.uuid5(namespace, "project")}">'
            f"<Name>{escape(str(report.model.get('project') or report.file_name))}</Name></Project>"
            "<ExtensionSchema></ExtensionSchema></ProjectExtension>",
        )
        for index, (check, finding) in enumerate(report.findings()):
            if finding.severity == "info" and not include_info:
                continue
            topic = str(uuid.uuid5(namespace, f"topic/{index}/{finding.rule}"))
            viewpoint = str(uuid.uuid5(namespace, f"viewpoint/{index}"))
            archive.writestr(f"{topic}/markup.bcf", _markup(report, check, finding, topic, viewpoint, when))
            archive.writestr(f"{topic}/viewpoint.bcfv", _viewpoint(viewpoint, finding, centres))
    return buffer.getvalue()


def write_reports(
    report: ReviewReport,
    *,
    html: Path | None = None,
    pdf: Path | None = None,
    bcf: Path | None = None,
    lang: str = "zh",
) -> None:
    """Write the requested report files."""
    if html is not None:
        html.write_text(render_html(report, lang=lang), encoding="utf-8")
    if pdf is not None:
        pdf.write_bytes(render_pdf(report, lang=lang))
    if bcf is not None:
        bcf.write_bytes(render_bcf(report))
