"""The deployment checklist, shipped with codexops: `codexops gate` runs it with pytest against a
resolved target (see CHECKLIST_DIR and plugin.py)."""

from pathlib import Path

CHECKLIST_DIR = Path(__file__).resolve().parent
