"""Operator pages: server-rendered pages for superusers (read-only for auditors).

UI layer: may import anything below it. One module per page family; URLs in ``urls.py``.
"""
