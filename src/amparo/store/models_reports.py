"""Tables of the reports work (on the shared declarative ``Base``; migration in versions/)."""

from __future__ import annotations

from amparo.store.models import Base

__all__ = ["Base"]
