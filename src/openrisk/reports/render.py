"""Rendering report data as CSV, XLSX (openpyxl) and PDF (reportlab). Pure and synchronous:
the service runs these in a worker thread, off the event loop.

The register report's CSV and XLSX use the column names of the register's export, so that both
can be imported back with ``POST /risks/import`` (unknown columns such as ``owner_email`` are
ignored by the importer). Every CSV and XLSX cell goes through ``core.spreadsheet``, which
neutralises text a spreadsheet would run as a formula (the importer strips the quote again).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape

from openrisk.core.spreadsheet import CsvWriter, xlsx_row
from openrisk.reports.data import (
    MITIGATION_STATUSES,
    ReportData,
    RiskRow,
)

REGISTER_COLUMNS = (
    "id",
    "title",
    "description",
    "impact",
    "probability",
    "score",
    "severity",
    "status",
    "treatment",
    "owner_id",
    "owner_email",
    "tags",
    "frameworks",
    "review_date",
    "external_id",
    "source",
    "mitigations",
    "mitigations_done",
    "version",
    "created_at",
    "updated_at",
)
MAX_PDF_REGISTER_ROWS = 2_000


def heatmap_rows(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    """The header and the rows (highest impact first) of the tenant's N×M heatmap."""
    header = ["impact \\ probability", *(str(p) for p in range(1, data.probability_levels + 1))]
    rows = [[impact, *data.heatmap[impact - 1]] for impact in range(data.impact_levels, 0, -1)]
    return header, rows


def heatmap_colour(data: ReportData, impact: int, probability: int) -> str:
    """The cell's band colour, lightened so that its count stays readable in print."""
    band = data.heatmap_bands[impact - 1][probability - 1] if data.heatmap_bands else ""
    colour = data.band_colours.get(band, "#bdbdbd")
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * 0.55):02x}" for c in (red, green, blue))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def register_values(row: RiskRow, *, for_xlsx: bool = False) -> list[Any]:
    def when(moment: datetime) -> Any:
        return moment.astimezone(UTC).replace(tzinfo=None) if for_xlsx else moment.isoformat()

    review: Any = row.review_date if for_xlsx else (row.review_date or "")
    if isinstance(review, date) and not for_xlsx:
        review = review.isoformat()
    return [
        str(row.id),
        row.title,
        row.description,
        row.impact,
        row.probability,
        float(row.score) if for_xlsx else f"{row.score:.2f}",
        row.severity,
        row.status,
        row.treatment,
        str(row.owner_id) if row.owner_id else "",
        row.owner_email or "",
        ";".join(row.tags),
        ";".join(row.frameworks),
        review,
        row.external_id or "",
        row.source,
        row.mitigations,
        row.mitigations_done,
        row.version,
        when(row.created_at),
        when(row.updated_at),
    ]


# --------------------------------------------------------------------------- CSV


def _csv(write: Callable[[Any], None]) -> bytes:
    buffer = io.StringIO(newline="")
    write(CsvWriter(buffer))
    return buffer.getvalue().encode("utf-8")


def register_csv(data: ReportData) -> bytes:
    def write(writer: Any) -> None:
        writer.writerow(REGISTER_COLUMNS)
        for row in data.register:
            writer.writerow(register_values(row))

    return _csv(write)


def _executive_tables(data: ReportData) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) of each section of the executive summary."""
    summary: list[list[Any]] = [
        ["tenant", data.tenant_name],
        ["generated_at", data.generated_at.isoformat()],
        ["global_risk_score", data.global_risk_score],
        ["total_risks", data.total_risks],
        ["mean_score", "" if data.mean_score is None else f"{data.mean_score:.2f}"],
        ["above_appetite", data.above_appetite],
        ["mitigations_total", data.mitigations.get("total", 0)],
        ["mitigations_overdue", data.mitigations.get("overdue", 0)],
    ]
    heatmap_header, heatmap = heatmap_rows(data)
    top = [
        [rank, r.title, f"{r.score:.2f}", r.severity, r.status, r.owner_email or ""]
        for rank, r in enumerate(data.top_risks, start=1)
    ]
    overdue = [
        [
            m.title,
            m.risk_title,
            m.status,
            m.progress,
            m.due_date.isoformat(),
            m.days_overdue,
            m.assignee_email or "",
        ]
        for m in data.overdue
    ]
    return [
        ("Summary", ["metric", "value"], summary),
        ("Risks by severity", ["severity", "count"], [[k, v] for k, v in data.by_severity.items()]),
        ("Risks by status", ["status", "count"], [[k, v] for k, v in data.by_status.items()]),
        (
            "Mitigations by status",
            ["status", "count"],
            [[s, data.mitigations.get(s.lower(), 0)] for s in MITIGATION_STATUSES],
        ),
        ("Heatmap", heatmap_header, heatmap),
        ("Top risks", ["rank", "title", "score", "severity", "status", "owner"], top),
        (
            "Overdue mitigations",
            ["mitigation", "risk", "status", "progress", "due_date", "days_overdue", "assignee"],
            overdue,
        ),
    ]


def executive_csv(data: ReportData) -> bytes:
    """One table per section, each with a title row and a header, separated by a blank row."""

    def write(writer: Any) -> None:
        for index, (title, header, rows) in enumerate(_executive_tables(data)):
            if index:
                writer.writerow([])
            writer.writerow([f"# {title}"])
            writer.writerow(header)
            writer.writerows(rows)

    return _csv(write)


# --------------------------------------------------------------------------- XLSX


def _xlsx_bytes(workbook: Any) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def register_xlsx(data: ReportData) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Register")
    sheet.append(xlsx_row(sheet, REGISTER_COLUMNS, font=Font(bold=True)))
    for row in data.register:
        sheet.append(xlsx_row(sheet, register_values(row, for_xlsx=True)))
    return _xlsx_bytes(workbook)


def executive_xlsx(data: ReportData) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    workbook = Workbook()
    bold = Font(bold=True)
    first = True
    for title, header, rows in _executive_tables(data):
        if title in ("Risks by status", "Mitigations by status"):
            continue  # kept in the Summary sheet below
        sheet = workbook.active if first else workbook.create_sheet()
        assert sheet is not None
        sheet.title = title[:31]
        first = False
        sheet.append(xlsx_row(sheet, header, font=bold))
        for row in rows:
            sheet.append(xlsx_row(sheet, row))
        if title == "Summary":
            for extra_title, extra_header, extra_rows in _executive_tables(data)[1:4]:
                sheet.append([])
                sheet.append(xlsx_row(sheet, [extra_title], font=bold))
                sheet.append(xlsx_row(sheet, extra_header))
                for extra in extra_rows:
                    sheet.append(xlsx_row(sheet, extra))
        if title == "Heatmap":
            for r_index, impact in enumerate(range(data.impact_levels, 0, -1), start=2):
                for probability in range(1, data.probability_levels + 1):
                    cell = sheet.cell(row=r_index, column=probability + 1)
                    colour = heatmap_colour(data, impact, probability)[1:]
                    cell.fill = PatternFill("solid", fgColor=colour)
                    cell.alignment = Alignment(horizontal="center")
        sheet.column_dimensions["A"].width = 24
        if title in ("Top risks", "Overdue mitigations"):
            sheet.column_dimensions["B"].width = 48
    return _xlsx_bytes(workbook)


# --------------------------------------------------------------------------- PDF


def _pdf(data: ReportData, title: str, story_of: Callable[[Any], list[Any]]) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=f"{title} — {data.tenant_name}",
        author="OpenRisk",
        subject=title,
    )

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillGray(0.4)
        canvas.drawString(
            14 * mm, 9 * mm, f"OpenRisk · {data.tenant_name} · {_stamp(data.generated_at)}"
        )
        canvas.drawRightString(doc.pagesize[0] - 14 * mm, 9 * mm, f"Page {doc.page}")
        canvas.restoreState()

    document.build(story_of(document), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    sheet = getSampleStyleSheet()
    return {
        "title": sheet["Title"],
        "h2": sheet["Heading2"],
        "body": sheet["BodyText"],
        "cell": ParagraphStyle("cell", parent=sheet["BodyText"], fontSize=8, leading=10),
    }


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    widths: Sequence[float] | None = None,
    wrap: Sequence[int] = (),
    severity_column: int | None = None,
    band_colours: Mapping[str, str] | None = None,
) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    cell = _styles()["cell"]
    body: list[list[Any]] = [list(header)]
    commands: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#263238")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0bec5")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f7f8")]),
    ]
    for index, row in enumerate(rows, start=1):
        values = [
            Paragraph(escape(str(v)), cell) if column in wrap else str(v)
            for column, v in enumerate(row)
        ]
        body.append(values)
        if severity_column is not None:
            colour = (band_colours or {}).get(str(row[severity_column]))
            if colour:
                commands.append(
                    (
                        "TEXTCOLOR",
                        (severity_column, index),
                        (severity_column, index),
                        colors.HexColor(colour),
                    )
                )
    table = Table(body, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(commands))
    return table


def _heatmap(data: ReportData) -> Any:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    header, rows = heatmap_rows(data)
    body: list[list[Any]] = [["Impact \\ Probability", *header[1:]]]
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
        ("ALIGN", (1, 0), (-1, -1), "CENTER"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.white),
        ("FONTSIZE", (0, 0), (-1, -1), 9),
    ]
    for r_index, row in enumerate(rows, start=1):
        impact = int(row[0])
        body.append([str(n) for n in row])
        for probability in range(1, data.probability_levels + 1):
            commands.append(
                (
                    "BACKGROUND",
                    (probability, r_index),
                    (probability, r_index),
                    colors.HexColor(heatmap_colour(data, impact, probability)),
                )
            )
    width = min(14.0, 140.0 / data.probability_levels)  # a 10-level axis fits the page
    table = Table(
        body,
        colWidths=[34 * mm] + [width * mm] * data.probability_levels,
        rowHeights=[7 * mm] * (data.impact_levels + 1),
    )
    table.setStyle(TableStyle(commands))
    return table


def register_pdf(data: ReportData) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    styles = _styles()
    rows = data.register[:MAX_PDF_REGISTER_ROWS]

    def story(document: Any) -> list[Any]:
        parts: list[Any] = [
            Paragraph(escape(f"Risk register — {data.tenant_name}"), styles["title"]),
            Paragraph(
                escape(
                    f"{data.total_risks} live risks · Global risk score: "
                    f"{data.global_risk_score}/100 · generated {_stamp(data.generated_at)}"
                ),
                styles["body"],
            ),
        ]
        if len(rows) < data.total_risks:
            parts.append(
                Paragraph(
                    escape(
                        f"The {len(rows)} highest-scored risks of {data.total_risks} are listed; "
                        "the CSV and XLSX formats hold the whole register."
                    ),
                    styles["body"],
                )
            )
        parts.append(Spacer(1, 4 * mm))
        parts.append(
            _table(
                [
                    "#",
                    "Title",
                    "I",
                    "P",
                    "Score",
                    "Severity",
                    "Status",
                    "Treatment",
                    "Owner",
                    "Mitig.",
                    "Review",
                ],
                (
                    [
                        rank,
                        r.title,
                        r.impact,
                        r.probability,
                        f"{r.score:.2f}",
                        r.severity,
                        r.status,
                        r.treatment,
                        r.owner_email or "",
                        f"{r.mitigations_done}/{r.mitigations}",
                        r.review_date.isoformat() if r.review_date else "",
                    ]
                    for rank, r in enumerate(rows, start=1)
                ),
                widths=[
                    10 * mm,
                    88 * mm,
                    8 * mm,
                    8 * mm,
                    14 * mm,
                    20 * mm,
                    22 * mm,
                    22 * mm,
                    44 * mm,
                    14 * mm,
                    19 * mm,
                ],
                wrap=(1, 8),
                severity_column=5,
                band_colours=data.band_colours,
            )
        )
        return parts

    return _pdf(data, "Risk register", story)


def executive_pdf(data: ReportData) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, Spacer, Table

    styles = _styles()
    above = data.above_appetite
    mean = "n/a" if data.mean_score is None else f"{data.mean_score:.2f}"

    def story(document: Any) -> list[Any]:
        kpis = _table(
            ["Indicator", "Value"],
            [
                ["Global risk score", f"{data.global_risk_score}/100"],
                ["Live risks", data.total_risks],
                ["Mean risk score", mean],
                ["Above appetite", above],
                [
                    "Open mitigations",
                    data.mitigations.get("planned", 0) + data.mitigations.get("in_progress", 0),
                ],
                ["Overdue mitigations", data.mitigations.get("overdue", 0)],
            ],
            widths=[60 * mm, 30 * mm],
        )
        severity = _table(
            ["Severity", "Risks"],
            [[k, v] for k, v in data.by_severity.items()],
            widths=[30 * mm, 20 * mm],
            severity_column=0,
            band_colours=data.band_colours,
        )
        status = _table(
            ["Status", "Risks"],
            [[k, v] for k, v in data.by_status.items()],
            widths=[30 * mm, 20 * mm],
        )
        side_by_side = Table(
            [[kpis, severity, status]],
            colWidths=[95 * mm, 55 * mm, 55 * mm],
            hAlign="LEFT",
            style=[("VALIGN", (0, 0), (-1, -1), "TOP")],
        )
        parts: list[Any] = [
            Paragraph(escape(f"Executive risk summary — {data.tenant_name}"), styles["title"]),
            Paragraph(
                escape(
                    f"Global risk score: {data.global_risk_score}/100 across {data.total_risks} "
                    f"live risks (mean score {mean}); {above} above appetite; "
                    f"{data.mitigations.get('overdue', 0)} overdue mitigations. "
                    f"Generated {_stamp(data.generated_at)}."
                ),
                styles["body"],
            ),
            Spacer(1, 4 * mm),
            side_by_side,
            Spacer(1, 4 * mm),
            KeepTogether(
                [Paragraph("Heatmap (impact × probability)", styles["h2"]), _heatmap(data)]
            ),
            Paragraph("Top risks", styles["h2"]),
        ]
        if data.top_risks:
            parts.append(
                _table(
                    ["#", "Title", "Score", "Severity", "Status", "Owner"],
                    (
                        [rank, r.title, f"{r.score:.2f}", r.severity, r.status, r.owner_email or ""]
                        for rank, r in enumerate(data.top_risks, start=1)
                    ),
                    widths=[10 * mm, 120 * mm, 18 * mm, 22 * mm, 24 * mm, 60 * mm],
                    wrap=(1, 5),
                    severity_column=3,
                    band_colours=data.band_colours,
                )
            )
        else:
            parts.append(Paragraph("No live risks.", styles["body"]))
        parts.append(Paragraph("Overdue mitigations", styles["h2"]))
        if data.overdue:
            parts.append(
                _table(
                    ["Mitigation", "Risk", "Status", "Progress", "Due", "Days late", "Assignee"],
                    (
                        [
                            m.title,
                            m.risk_title,
                            m.status,
                            f"{m.progress}%",
                            m.due_date.isoformat(),
                            m.days_overdue,
                            m.assignee_email or "",
                        ]
                        for m in data.overdue
                    ),
                    widths=[70 * mm, 70 * mm, 24 * mm, 16 * mm, 20 * mm, 16 * mm, 50 * mm],
                    wrap=(0, 1, 6),
                )
            )
        else:
            parts.append(Paragraph("No overdue mitigations.", styles["body"]))
        return parts

    return _pdf(data, "Executive risk summary", story)


RENDERERS: dict[tuple[str, str], Callable[[ReportData], bytes]] = {
    ("register", "csv"): register_csv,
    ("register", "xlsx"): register_xlsx,
    ("register", "pdf"): register_pdf,
    ("executive", "csv"): executive_csv,
    ("executive", "xlsx"): executive_xlsx,
    ("executive", "pdf"): executive_pdf,
}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def render(kind: str, fmt: str, data: ReportData) -> bytes:
    return RENDERERS[(kind, fmt)](data)
