"""Render bundle files for the browser: Python highlighted with line numbers, text as text."""

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

MAX_RENDERED_BYTES = 512 * 1024  # a 50 MB CSV of test users is downloaded, not rendered

_FORMATTER = HtmlFormatter(linenos="table", lineanchors="L", linespans="line", anchorlinenos=True, cssclass="source",
                           wrapcode=True)


def stylesheet() -> str:
    return _FORMATTER.get_style_defs(".source")


def render_file(path: str, data: bytes) -> dict:
    """{"html": SafeString | None, "note": str | None}: why a file is not shown, if it is not."""
    if len(data) > MAX_RENDERED_BYTES:
        return {"html": None, "note": f"{len(data):,} bytes: too large to show here; download the version to read it."}
    if b"\0" in data:
        return {"html": None, "note": f"Binary file, {len(data):,} bytes."}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {"html": None, "note": f"Not UTF-8 text, {len(data):,} bytes."}
    if path.endswith(".py"):
        lexer = PythonLexer()
    else:
        try:
            lexer = get_lexer_for_filename(path)
        except ClassNotFound:
            lexer = TextLexer()
    # Pygments escapes the source itself; the result is safe to embed.
    html: SafeString = mark_safe(highlight(text, lexer, _FORMATTER))
    return {"html": html, "note": None}
