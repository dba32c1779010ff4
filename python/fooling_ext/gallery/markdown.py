"""Just enough Markdown for the reports analyses write (report.md): headings, paragraphs, bullet and numbered
lists, pipe tables, fenced code, and inline code, bold, links and images. Everything else is shown as text;
all text is escaped, so a report can never inject markup into the gallery, and a link or image is kept only
when its URL is safe (:func:`safe_url`); any other is shown as text."""

from __future__ import annotations

import re
from html import escape, unescape

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|!\[([^\]]*)\]\(([^)\s]+)\)|\[([^\]]+)\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_CONTROLS = "".join(map(chr, range(0x21)))  # C0 controls and space: what a browser strips from a URL's ends


def safe_url(url: str) -> bool:
    """Whether `url` is an http(s) URL, a relative path or an anchor once read as a browser reads it: HTML
    entities decoded, C0 controls and spaces stripped from both ends, tabs and newlines removed anywhere, the
    scheme in any case. A control character left inside is refused too (no browser quirk to rely on)."""
    for text in (url, unescape(url)):  # as written and as an attribute would decode it
        text = re.sub(r"[\t\n\r]", "", text.strip(_CONTROLS))
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            return False
        scheme = _SCHEME.match(text)
        if scheme is not None and scheme.group(1).lower() not in ("http", "https"):
            return False
    return True


def inline(text: str) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(escape(text[pos : m.start()]))
        code, bold, alt, src, label, href = m.groups()
        if code is not None:
            out.append(f"<code>{escape(code)}</code>")
        elif bold is not None:
            out.append(f"<strong>{escape(bold)}</strong>")
        elif src is not None and safe_url(src):
            out.append(f'<img src="{escape(src)}" alt="{escape(alt)}">')
        elif href is not None and safe_url(href):
            out.append(f'<a href="{escape(href)}">{escape(label)}</a>')
        else:
            out.append(escape(m.group(0)))
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def render_markdown(text: str) -> str:
    """HTML of a Markdown text (see the module docstring for what is understood)."""
    lines = text.splitlines()
    html, i = [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            html.append("<pre>" + escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            level = min(6, len(m.group(1)) + 1)  # the page has its own h1
            html.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?[\s:|-]+\|?$", lines[i + 1].strip()):
            head = "".join(f"<th>{inline(c)}</th>" for c in _cells(stripped))
            body, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                body.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        elif re.match(r"^([-*]|\d+\.)\s+", stripped):
            tag = "ol" if stripped[0].isdigit() else "ul"
            items = []
            while i < len(lines) and re.match(r"^([-*]|\d+\.)\s+", lines[i].strip()):
                items.append("<li>" + inline(re.sub(r"^([-*]|\d+\.)\s+", "", lines[i].strip())) + "</li>")
                i += 1
            html.append(f"<{tag}>{''.join(items)}</{tag}>")
        elif not stripped:
            i += 1
        else:
            para = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not re.match(r"^(#{1,6}\s|```|\||[-*]\s|\d+\.\s)", lines[i].strip())
            ):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a line no block rule took (e.g. a lone "|"): show it as text
                para, i = [stripped], i + 1
            html.append("<p>" + inline(" ".join(para)) + "</p>")
    return "\n".join(html)
