"""Minimal reader for the cells of one sheet of an .xlsx workbook (Office Open XML).

Only what CSIQ's `csiq.DMOS.xlsx` needs (no openpyxl dependency): shared strings,
inline strings, numbers; the sheet is chosen by name through the workbook relations.
"""
from __future__ import annotations

import re
import zipfile
import xml.etree.ElementTree as ET

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL = re.compile(r"^([A-Z]+)(\d+)$")


def _col(letters: str) -> int:
  n = 0
  for ch in letters:
    n = n * 26 + ord(ch) - 64
  return n - 1


def _text(node) -> str:
  return "".join(t.text or "" for t in node.iter(f"{_MAIN}t"))


def read_sheet(path, name: str) -> list[list[str | float | None]]:
  """Rows of sheet `name` as lists (column A = index 0; empty cells None).

  Raises KeyError when the workbook has no such sheet; zipfile.BadZipFile / KeyError /
  ET.ParseError when the file is not a workbook.
  """
  with zipfile.ZipFile(path) as z:
    wb = ET.fromstring(z.read("xl/workbook.xml"))
    rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_PKG}Relationship")}
    rid = next((s.get(f"{_REL}id") for s in wb.iter(f"{_MAIN}sheet")
                if s.get("name") == name), None)
    if rid is None:
      raise KeyError(name)
    target = targets[rid].lstrip("/")
    target = target if target.startswith("xl/") else f"xl/{target}"
    shared = []
    if "xl/sharedStrings.xml" in z.namelist():
      sst = ET.fromstring(z.read("xl/sharedStrings.xml"))
      shared = [_text(si) for si in sst.iter(f"{_MAIN}si")]
    sheet = ET.fromstring(z.read(target))
  rows = []
  for row in sheet.iter(f"{_MAIN}row"):
    cells: dict[int, str | float | None] = {}
    for c in row.iter(f"{_MAIN}c"):
      m = _CELL.match(c.get("r", ""))
      col = _col(m.group(1)) if m else (max(cells) + 1 if cells else 0)
      kind, v = c.get("t"), c.find(f"{_MAIN}v")
      if kind == "s" and v is not None:
        value = shared[int(v.text)]
      elif kind == "inlineStr":
        value = _text(c)
      elif kind in ("str", "e", "b") and v is not None:
        value = v.text
      elif v is not None and v.text is not None:
        value = float(v.text)
      else:
        value = None
      cells[col] = value
    rows.append([cells.get(i) for i in range(max(cells) + 1)] if cells else [])
  return rows
