"""CyberTipline XML, rendered from a report's generic form.

Three documents, in the structure of NCMEC's CyberTipline reporting API:

* :func:`report_xml` -- ``<report>``: ``incidentSummary``, ``internetDetails``, ``reporter``,
  ``personOrUserReported``; what ``/submit`` receives (``with_files=False``) and, with one
  ``fileDetails`` per confirmed file, the whole report as packages and ``amparo reports show``
  present it.
* :func:`file_details_xml` -- one ``<fileDetails>`` for ``/fileinfo`` after a file's upload.

Built with ElementTree, so every value is escaped; characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from amparo.reports.model import ReportData, ReportedFile

INCIDENT_TYPE = "Child Pornography (possession, manufacture, and distribution)"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("", str(value))


def _sub(parent: ET.Element, tag: str, value: object | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if value is not None:
        element.text = _text(value)
    return element


def _bool(value: bool) -> str:
    return "true" if value else "false"


def report_element(data: ReportData, *, with_files: bool = True) -> ET.Element:
    report = ET.Element("report")
    summary = _sub(report, "incidentSummary")
    _sub(summary, "incidentType", INCIDENT_TYPE)
    _sub(summary, "incidentDateTime", data.incident_at)

    internet = _sub(report, "internetDetails")
    page = _sub(internet, "webPageIncident")
    for url in data.urls:
        _sub(page, "url", url)
    context = []
    if data.upload_ids:
        context.append(
            "Uploaded to the reporting platform; upload ids: " + ", ".join(data.upload_ids)
        )
    if not data.urls and not data.upload_ids:
        context.append("Found by hash matching on the reporting platform's systems.")
    if context:
        _sub(page, "additionalInfo", " ".join(context))

    reporter = _sub(report, "reporter")
    person = _sub(reporter, "reportingPerson")
    first, _, last = data.reporter.contact_name.rpartition(" ")
    if not first:
        first, last = last, ""
    if first:
        _sub(person, "firstName", first)
    if last:
        _sub(person, "lastName", last)
    _sub(person, "email", data.reporter.email)
    if data.reporter.phone:
        _sub(person, "phone", data.reporter.phone)
    _sub(reporter, "companyTemplate", data.reporter.org_name)

    for account in data.accounts:
        reported = _sub(report, "personOrUserReported")
        _sub(reported, "espIdentifier", account)

    if with_files:
        for f in data.files:
            report.append(file_details_element(f))
    return report


def file_details_element(
    f: ReportedFile, *, report_id: str | None = None, file_id: str | None = None
) -> ET.Element:
    details = ET.Element("fileDetails")
    if report_id is not None:
        _sub(details, "reportId", report_id)
    if file_id is not None:
        _sub(details, "fileId", file_id)
    _sub(details, "originalFileName", f.file_name)
    _sub(details, "fileViewedByEsp", _bool(f.viewed_by_esp))
    _sub(details, "industryClassification", f.classification)
    if f.md5:
        _sub(details, "originalFileHash", f.md5, hashType="MD5")
    _sub(details, "originalFileHash", f.sha256, hashType="SHA256")
    # Annotations are empty elements named by the CyberTipline (``<physicalHarm/>``...); a
    # name that is not a plain XML name cannot be one, and stays in the generic form only.
    names = [a for a in f.annotations if _NAME.fullmatch(a)]
    if names:
        annotations = _sub(details, "fileAnnotations")
        for name in names:
            _sub(annotations, name)
    return details


def _serialise(element: ET.Element) -> str:
    ET.indent(element)
    body = ET.tostring(element, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def report_xml(data: ReportData, *, with_files: bool = True) -> str:
    """The ``<report>`` document (see the module docstring)."""
    return _serialise(report_element(data, with_files=with_files))


def file_details_xml(f: ReportedFile, *, report_id: str, file_id: str) -> str:
    """The ``<fileDetails>`` document ``/fileinfo`` receives for one uploaded file."""
    return _serialise(file_details_element(f, report_id=report_id, file_id=file_id))
