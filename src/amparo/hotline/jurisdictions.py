"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""
