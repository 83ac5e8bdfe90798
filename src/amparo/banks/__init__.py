"""Banks: named hash lists with provenance, and their file formats."""

from amparo.banks.model import BankInfo, EntryRecord

__all__ = ["BankInfo", "EntryRecord"]
