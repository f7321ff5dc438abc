"""Student output made safe to show in a browser: one sanitizer for every report the grader writes.

Everything a student's notebook displays is hostile markup until cleaned here:

- :func:`clean_html` — an HTML fragment through `nh3` (the Ammonia sanitizer): an allow-list of
  tags and attributes, no scripts, styles, event handlers, forms or frames; links only to
  ``http(s)``/``mailto`` (``rel="noopener noreferrer nofollow"``), no relative URLs; images only
  as ``data:image/png|jpeg;base64`` URLs holding a real image of that type. Feedback pages and
  any other report (e.g. a similarity report) call this for every piece of student text that is
  not simply escaped.
- :func:`image_data` — base64 image data checked to decode and to start like the stated type;
  returned re-encoded by us, so it cannot close an attribute.
- :func:`clean_output` / :func:`clean_notebook` — nbformat outputs and whole notebooks (the
  executed notebooks handed to formgrader): ``text/html`` and HTML in ``text/markdown`` cleaned,
  images checked, JavaScript, SVG, LaTeX, widget and every other MIME type dropped (the
  ``text/plain`` form stays), markdown cells' HTML cleaned, attachments checked, notebook
  metadata that nbconvert would turn into scripts (widget state) dropped.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

import nh3

#: MIME types kept in executed notebooks (each one cleaned as below).
KEPT_MIME_TYPES = ("text/plain", "text/html", "text/markdown", "image/png", "image/jpeg")
#: application/json outputs kept when their JSON is at most this long.
MAX_JSON_OUTPUT = 200_000
IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
MAX_IMAGE_BYTES = 8 * 1024 * 1024

_TAGS = nh3.ALLOWED_TAGS - {"area", "map"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_URL_SCHEMES = {"http", "https", "mailto", "data"}


def image_data(mime: str, data: Any) -> str | None:
    """Canonical base64 of ``data`` if it is base64 of a ``mime`` image (png/jpeg), else None."""
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        data = "".join(data)
    if mime not in IMAGE_MAGIC or not isinstance(data, str):
        return None
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 16:
        return None
    try:
        raw = base64.b64decode("".join(data.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(IMAGE_MAGIC[mime]):
        return None
    return base64.b64encode(raw).decode("ascii")


def _data_url_image(value: str) -> str | None:
    head, sep, payload = value.partition(",")
    if not sep:
        return None
    mime, _, encoding = head[len("data:") :].partition(";")
    if encoding.strip().lower() != "base64":
        return None
    clean = image_data(mime.strip().lower(), payload)
    return f"data:{mime.strip().lower()};base64,{clean}" if clean else None


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        # no remote images (tracking, requests from the reader's browser): embedded ones only
        return _data_url_image(value) if value.lower().startswith("data:") else None
    if value.strip().lower().startswith("data:"):
        return None  # a data: URL anywhere else (a link) is a way to smuggle a page in
    return value


def clean_html(html: str) -> str:
    """``html`` (a fragment written by student code) with only safe markup left.

    The one sanitizer of the grader: feedback pages, executed notebooks for formgrader and any
    other report showing student output must pass their HTML through this function.
    """
    return nh3.clean(
        str(html),
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
    )


def clean_markdown(text: str) -> str:
    """Markdown whose embedded HTML is cleaned (plain markdown is left exactly as written)."""
    return clean_html(text) if nh3.is_html(text) else text


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "".join(value)
    return None


def clean_bundle(data: Any) -> dict[str, Any]:
    """A MIME bundle (``{mime: data}``) with only kept, cleaned, well-typed entries."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for mime in KEPT_MIME_TYPES:
        if mime not in data:
            continue
        value = data[mime]
        if mime in IMAGE_MAGIC:
            clean = image_data(mime, value)
        else:
            text = _text(value)
            if text is None:
                continue
            clean = {"text/html": clean_html, "text/markdown": clean_markdown}.get(
                mime, lambda t: t
            )(text)
        if clean is not None:
            out[mime] = clean
    value = data.get("application/json")
    if isinstance(value, (dict, list)):
        try:
            if len(json.dumps(value)) <= MAX_JSON_OUTPUT:
                out["application/json"] = copy.deepcopy(value)
        except (TypeError, ValueError, RecursionError):
            pass
    if not out and data:
        out["text/plain"] = "[output not shown: only text and PNG/JPEG images are kept]"
    return out


def clean_output(output: Any) -> dict | None:
    """An nbformat v4 output that validates and is safe to render, or None."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        text = _text(output.get("text"))
        if name not in ("stdout", "stderr") or text is None:
            return None
        return {"output_type": "stream", "name": name, "text": text}
    if kind in ("display_data", "execute_result"):
        out = {"output_type": kind, "data": clean_bundle(output.get("data")), "metadata": {}}
        if kind == "execute_result":
            count = output.get("execution_count")
            out["execution_count"] = count if type(count) is int and count >= 0 else None
        return out
    if kind == "error":
        traceback = output.get("traceback")
        return {
            "output_type": "error",
            "ename": str(output.get("ename", "")),
            "evalue": str(output.get("evalue", "")),
            "traceback": [str(x) for x in traceback] if isinstance(traceback, list) else [],
        }
    return None


def clean_attachments(attachments: Any) -> dict | None:
    """A markdown cell's attachments with only valid PNG/JPEG images, or None for none."""
    if not isinstance(attachments, dict):
        return None
    out = {}
    for name, bundle in attachments.items():
        if not isinstance(name, str) or not isinstance(bundle, dict):
            continue
        images = {m: d for m in IMAGE_MAGIC if (d := image_data(m, bundle.get(m)))}
        if images:
            out[name] = images
    return out or None


#: Notebook metadata kept in executed notebooks (nbconvert embeds and runs widget state).
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def clean_notebook(nb: Any) -> Any:
    """The notebook (an nbformat NotebookNode, changed in place and returned) safe to render."""
    import nbformat

    nb.metadata = nbformat.from_dict(
        {k: nb.metadata[k] for k in KEPT_NOTEBOOK_METADATA if k in nb.get("metadata", {})}
    )
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            outputs = [clean_output(o) for o in cell.get("outputs", [])]
            cell.outputs = [nbformat.from_dict(o) for o in outputs if o is not None]
        else:
            if cell.get("cell_type") == "markdown":
                cell.source = clean_markdown(cell.get("source", ""))
            attachments = clean_attachments(cell.get("attachments"))
            cell.pop("attachments", None)
            if attachments:
                cell["attachments"] = nbformat.from_dict(attachments)
    return nb
