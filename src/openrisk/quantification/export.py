"""The register's annual loss as XLSX (openpyxl, through the formula-safe writer) and PDF
(reportlab). Pure and synchronous: callers run these in a worker thread."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from openrisk.core.spreadsheet import xlsx_row
from openrisk.quantification.schemas import LossSummaryOut, PortfolioOut
from openrisk.quantification.service import PortfolioInputs

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_TYPE = "application/pdf"


def _summary_rows(result: PortfolioOut) -> list[list[Any]]:
    def pair(name: str, pick: str) -> list[Any]:
        inherent: LossSummaryOut | None = result.inherent
        residual: LossSummaryOut | None = result.residual
        return [
            name,
            getattr(inherent, pick) if inherent else None,
            getattr(residual, pick) if residual else None,
        ]

    return [
        pair("Expected annual loss (ALE, mean)", "mean"),
        pair("Median annual loss", "median"),
        pair("90th percentile", "p90"),
        pair("95th percentile (VaR 95 %)", "p95"),
        pair("99th percentile (VaR 99 %)", "p99"),
        pair("Worst simulated year", "maximum"),
        pair("P(at least one loss)", "p_at_least_one"),
    ]


def _run_rows(result: PortfolioOut, tenant: str, generated_at: datetime) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["Tenant", tenant],
        ["Generated at (UTC)", generated_at.strftime("%Y-%m-%d %H:%M")],
        ["Quantified risks", result.risk_count],
        ["Currencies", ", ".join(result.currencies) or "—"],
        ["Simulated years", result.iterations],
        ["Seed", result.seed],
        ["Correlation", result.correlation],
        ["Inputs digest", result.digest],
    ]
    if result.appetite is not None:
        a = result.appetite
        rows += [
            [
                "Loss appetite",
                f"P(annual loss > {a.threshold:,.0f} {a.currency}) <= {a.max_probability:.2%}",
            ],
            ["P(residual loss > threshold)", a.probability_residual],
            ["P(inherent loss > threshold)", a.probability_inherent],
            ["Verdict", "within appetite" if a.verdict == "within" else "above appetite"],
        ]
    return rows


def _input_rows(inputs: PortfolioInputs) -> list[list[Any]]:
    rows = []
    for risk_id, title, q, controls in inputs.risks:
        loss = q.loss
        rows.append(
            [
                title,
                str(risk_id),
                q.frequency.min,
                q.frequency.most_likely,
                q.frequency.max,
                "90 % interval" if loss.kind == "interval" else "three-point",
                loss.low if loss.kind == "interval" else loss.min,
                loss.most_likely,
                loss.high if loss.kind == "interval" else loss.max,
                loss.currency,
                len(controls),
            ]
        )
    return rows


INPUT_HEADER = (
    "Risk",
    "Risk id",
    "Events/year min",
    "Events/year most likely",
    "Events/year max",
    "Loss estimate",
    "Loss low/min",
    "Loss most likely",
    "Loss high/max",
    "Currency",
    "Mitigations",
)


def portfolio_xlsx(
    result: PortfolioOut, inputs: PortfolioInputs, *, tenant: str, generated_at: datetime
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    workbook = Workbook(write_only=True)
    summary = workbook.create_sheet("Summary")
    for row in _run_rows(result, tenant, generated_at):
        summary.append(xlsx_row(summary, row))
    summary.append([])
    summary.append(xlsx_row(summary, ["Annual loss", "Inherent", "Residual"], font=bold))
    for row in _summary_rows(result):
        summary.append(xlsx_row(summary, row))

    top = workbook.create_sheet("Top contributors")
    top.append(
        xlsx_row(
            top,
            ["Risk", "Risk id", "ALE inherent", "ALE residual", "Share of residual ALE"],
            font=bold,
        )
    )
    for c in result.contributors:
        top.append(
            xlsx_row(top, [c.title, str(c.risk_id), c.ale_inherent, c.ale_residual, c.share])
        )

    curve = workbook.create_sheet("Loss exceedance")
    curve.append(
        xlsx_row(curve, ["Annual loss", "P(inherent > loss)", "P(residual > loss)"], font=bold)
    )
    if result.curve is not None:
        for point in zip(
            result.curve.thresholds, result.curve.inherent, result.curve.residual, strict=True
        ):
            curve.append(xlsx_row(curve, list(point)))

    sheet = workbook.create_sheet("Inputs")
    sheet.append(xlsx_row(sheet, INPUT_HEADER, font=bold))
    for row in _input_rows(inputs):
        sheet.append(xlsx_row(sheet, row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _curve_drawing(result: PortfolioOut, width: float, height: float) -> Any:
    """The loss exceedance curve (log scale of losses), inherent solid, residual dashed."""
    from reportlab.graphics.shapes import Drawing, Line, PolyLine, String
    from reportlab.lib import colors

    drawing = Drawing(width, height)
    curve = result.curve
    if curve is None:
        return drawing
    left, bottom, right, top = 50.0, 24.0, width - 10, height - 10
    losses = [t for t in curve.thresholds if t > 0]
    if result.appetite is not None:
        losses.append(result.appetite.threshold)
    low = math.floor(math.log10(min(losses)))
    high = max(math.ceil(math.log10(max(losses))), low + 1)

    def x(value: float) -> float:
        return left + (right - left) * (math.log10(max(value, 10.0**low)) - low) / (high - low)

    def y(probability: float) -> float:
        return bottom + (top - bottom) * probability

    grey = colors.HexColor("#b0bec5")
    for k in range(5):
        drawing.add(Line(left, y(k / 4), right, y(k / 4), strokeColor=grey, strokeWidth=0.3))
        drawing.add(String(left - 4, y(k / 4) - 3, f"{25 * k} %", fontSize=7, textAnchor="end"))
    for k in range(low, high + 1):
        drawing.add(Line(x(10.0**k), bottom, x(10.0**k), top, strokeColor=grey, strokeWidth=0.3))
        drawing.add(
            String(x(10.0**k), bottom - 12, f"{10.0**k:,.0f}", fontSize=7, textAnchor="middle")
        )

    def points(values: Sequence[float]) -> list[float]:
        flat: list[float] = []
        for t, p in zip(curve.thresholds, values, strict=True):
            flat += [x(t), y(p)]
        return flat

    drawing.add(
        PolyLine(points(curve.inherent), strokeColor=colors.HexColor("#b54708"), strokeWidth=1.5)
    )
    drawing.add(
        PolyLine(
            points(curve.residual),
            strokeColor=colors.HexColor("#1f5fbf"),
            strokeWidth=1.5,
            strokeDashArray=[4, 2],
        )
    )
    if result.appetite is not None:
        red = colors.HexColor("#b42318")
        ax, ay = x(result.appetite.threshold), y(result.appetite.max_probability)
        drawing.add(Line(ax, bottom, ax, top, strokeColor=red, strokeDashArray=[2, 2]))
        drawing.add(Line(left, ay, right, ay, strokeColor=red, strokeDashArray=[2, 2]))
    return drawing


def portfolio_pdf(
    result: PortfolioOut, inputs: PortfolioInputs, *, tenant: str, generated_at: datetime
) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Quantitative risk — {tenant}",
        author="OpenRisk",
    )
    style = TableStyle(
        [
            ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0bec5")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#263238")),
            ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )

    def table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
        made = Table(rows, colWidths=widths, repeatRows=1)
        made.setStyle(style)
        return made

    cell = styles["BodyText"].clone("cell", fontSize=8, leading=10)
    story: list[Any] = [
        Paragraph(escape(f"Quantitative risk — {tenant}"), styles["Title"]),
        table(
            [["Run", ""]]
            + [
                [escape(str(k)), Paragraph(escape(str(v)), cell)]
                for k, v in _run_rows(result, tenant, generated_at)
            ],
            [60 * mm, 110 * mm],
        ),
        Spacer(1, 6 * mm),
        table(
            [["Annual loss", "Inherent", "Residual"]]
            + [
                [
                    name,
                    f"{a:.1%}" if "P(" in name else _money(a),
                    f"{b:.1%}" if "P(" in name else _money(b),
                ]
                if a is not None and b is not None
                else [name, "—", "—"]
                for name, a, b in _summary_rows(result)
            ],
            [70 * mm, 50 * mm, 50 * mm],
        ),
        Spacer(1, 6 * mm),
        Paragraph("Loss exceedance curve (inherent solid, residual dashed)", styles["Heading2"]),
        _curve_drawing(result, 170 * mm, 70 * mm),
        Paragraph("Top contributors", styles["Heading2"]),
        table(
            [["Risk", "ALE inherent", "ALE residual", "Share"]]
            + [
                [
                    Paragraph(escape(c.title), cell),
                    _money(c.ale_inherent),
                    _money(c.ale_residual),
                    f"{c.share:.1%}",
                ]
                for c in result.contributors
            ],
            [80 * mm, 32 * mm, 32 * mm, 26 * mm],
        ),
    ]
    document.build(story)
    return buffer.getvalue()
