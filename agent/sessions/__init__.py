"""Stored conversations: the store (`store`), its schema's migrations (`migrations`) and export to
Markdown or JSON (`export`, imported by whoever exports: the store itself never formats text).

The names callers use are re-exported here, so `from agent.sessions import SessionStore` keeps working.
"""

from agent.sessions.store import HIGHLIGHT, SearchHit, SessionInfo, SessionStore, title_from

__all__ = ["HIGHLIGHT", "SearchHit", "SessionInfo", "SessionStore", "title_from"]
