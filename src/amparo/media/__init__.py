"""Safe media decoding."""

from amparo.media.decode import DecodedImage, decode_image
from amparo.media.sniff import ARCHIVE_TYPES, IMAGE_TYPES, sniff

__all__ = ["ARCHIVE_TYPES", "IMAGE_TYPES", "DecodedImage", "decode_image", "sniff"]
