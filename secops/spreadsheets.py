"""Spreadsheet cells that show attacker-controlled text exactly and never run it.

Every export (the Security Event Handling workbook, the audit log's CSV and
XLSX files) writes its text through ``excel_text``.
"""

import re

# Excel's limit of characters per cell.
EXCEL_MAX_CELL_CHARACTERS = 32_767

# A cell starting with one of these is a formula to Excel, LibreOffice and
# every CSV importer (OWASP's list for CSV/formula injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot carry (openpyxl refuses to write them): C0
# controls other than tab, line feed and carriage return, lone surrogates and
# the two non-characters.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Excel decodes ``_xHHHH_`` inside cell text (its escape for control
# characters), so text such as ``_x003D_cmd`` would show as ``=cmd``.
# ``_x005F_`` is the escaped underscore: it keeps the text as written.
_EXCEL_ESCAPE = re.compile(r"_x[0-9A-Fa-f]{4}_")
_TRUNCATION_NOTE = "… [{} more characters not exported]"


def excel_text(value) -> str:
    """``value`` as text that Excel shows exactly and never evaluates.

    Unstorable characters are removed first, so that a control character
    cannot hide a leading ``=`` from the check that follows. Text a cell
    cannot hold is cut with a visible note, never silently.
    """
    text = _UNSTORABLE.sub("", str(value))
    text = _EXCEL_ESCAPE.sub(lambda match: "_x005F" + match[0], text)
    if text.startswith(FORMULA_TRIGGERS):
        text = "'" + text
    if len(text) > EXCEL_MAX_CELL_CHARACTERS:
        note = _TRUNCATION_NOTE.format(len(text))  # the longest the note can be
        keep = EXCEL_MAX_CELL_CHARACTERS - len(note)
        text = text[:keep] + _TRUNCATION_NOTE.format(len(text) - keep)
    return text
